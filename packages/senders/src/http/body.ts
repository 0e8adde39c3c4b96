import { type Batch, encodeJsonItems, type ItemFailure } from '@vinequeue/core/sender'
import type { HttpBodyFormat } from './options.ts'

/**
 * A batch's items encoded once, so that a body can be built for any subset of
 * them (a 413 splits the batch) without encoding again.
 */
export interface EncodedItems {
  /** By item index: JSON text (json, ndjson) or msgpack bytes; undefined for an item that failed. */
  readonly parts: ReadonlyArray<string | Uint8Array | undefined>
  /** Indices of the items that encoded, ascending. */
  readonly indices: readonly number[]
  /** Items that cannot be encoded: permanent per-item failures. */
  readonly failed: readonly ItemFailure[]
}

/**
 * Encodes every item of `batch` for `format`. Items from `enqueueRaw` are the
 * caller's own encoding and are spliced in unchanged: JSON text (one line for
 * ndjson) or one msgpack value.
 */
export function encodeItems(batch: Batch, format: HttpBodyFormat): EncodedItems {
  return format === 'msgpack' ? encodeMsgpack(batch) : encodeJsonItems(batch, { lines: format === 'ndjson' })
}

function encodeMsgpack(batch: Batch): EncodedItems {
  // The queue already holds every item as msgpack: reuse the bytes, decode nothing.
  const parts: Array<Uint8Array | undefined> = []
  const indices: number[] = []
  const failed: ItemFailure[] = []
  const payloads = batch.payloads()
  for (let index = 0; index < payloads.length; index++) {
    const { bytes } = payloads[index]!
    if (bytes.byteLength === 0) {
      parts.push(undefined)
      failed.push({ index, retryable: false, reason: 'raw item is empty: not a msgpack value' })
      continue
    }
    parts.push(bytes)
    indices.push(index)
  }
  return { parts, indices, failed }
}

/** The request body (before gzip) holding the items at `indices` (non-empty, all encoded). */
export function buildBody(format: HttpBodyFormat, encoded: EncodedItems, indices: readonly number[]): Buffer {
  const { parts } = encoded
  if (format === 'json') return Buffer.from(`[${indices.map((i) => parts[i] as string).join(',')}]`)
  if (format === 'ndjson') return Buffer.from(`${indices.map((i) => parts[i] as string).join('\n')}\n`)
  let size = arrayHeaderBytes(indices.length)
  for (const i of indices) size += (parts[i] as Uint8Array).byteLength
  const body = Buffer.allocUnsafe(size)
  let at = writeArrayHeader(body, indices.length)
  for (const i of indices) {
    const bytes = parts[i] as Uint8Array
    body.set(bytes, at)
    at += bytes.byteLength
  }
  return body
}

/** msgpack array header size: fixarray (< 16), array 16 (0xdc), array 32 (0xdd). */
function arrayHeaderBytes(n: number): number {
  return n < 16 ? 1 : n < 0x10000 ? 3 : 5
}

function writeArrayHeader(dst: Buffer, n: number): number {
  if (n < 16) {
    dst[0] = 0x90 | n
    return 1
  }
  if (n < 0x10000) {
    dst[0] = 0xdc
    dst.writeUInt16BE(n, 1)
    return 3
  }
  dst[0] = 0xdd
  dst.writeUInt32BE(n, 1)
  return 5
}

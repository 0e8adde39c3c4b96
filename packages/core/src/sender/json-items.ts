import type { Batch } from '../batch/batch-format.ts'
import type { ItemFailure } from './types.ts'

/** How `encodeJsonItems` treats the batch. */
export interface JsonItemsOptions {
  /**
   * true: every item must be one line (NDJSON): a raw item's trailing newline
   * is dropped and a raw item spanning several lines fails. Default false.
   */
  readonly lines?: boolean
  /**
   * What a raw item becomes: `'text'` (default) its bytes read as UTF-8,
   * checked (an empty one, or a multi-line one with `lines`, fails);
   * `'bytes'` its bytes as they are, unchecked (a target that takes bytes).
   */
  readonly raw?: 'text' | 'bytes'
}

/** A batch's items as JSON, by item index. */
export interface JsonItems {
  /**
   * By item index: the item's JSON text (a raw item's own text, or its bytes
   * with `raw: 'bytes'`); undefined for an item in `failed`.
   */
  readonly parts: ReadonlyArray<string | Uint8Array | undefined>
  /** Indexes of the items that encoded, ascending. */
  readonly indices: readonly number[]
  /** Items that cannot be encoded: permanent per-item failures (`retryable: false`). */
  readonly failed: readonly ItemFailure[]
}

const decoder = new TextDecoder()

/**
 * Every item of `batch` as JSON text, for senders whose target takes JSON.
 * `undefined` is written as `null` (JSON.stringify gives no document for it).
 * Items from `enqueueRaw` are the caller's own encoding and pass through
 * (see `raw`). An item JSON cannot write (a BigInt, a cycle) is a permanent
 * per-item failure: return `{ failed }` and the queue dead-letters those
 * items alone.
 * @throws ItemDecodeError as `batch.items()` does: let it propagate.
 */
export function encodeJsonItems(batch: Batch, options: JsonItemsOptions = {}): JsonItems {
  const lines = options.lines === true
  const rawText = options.raw !== 'bytes'
  const parts: Array<string | Uint8Array | undefined> = []
  const indices: number[] = []
  const failed: ItemFailure[] = []
  const entries = batch.entries()
  for (let index = 0; index < entries.length; index++) {
    const { value, raw } = entries[index]!
    let part: string | Uint8Array | undefined
    let reason: string | undefined
    if (raw && !rawText) part = value as Uint8Array
    else if (raw) {
      let text = decoder.decode(value as Uint8Array)
      if (lines && text.endsWith('\n')) text = text.slice(0, text.endsWith('\r\n') ? -2 : -1)
      if (text.trim() === '') reason = 'raw item is empty'
      else if (lines && text.includes('\n')) reason = 'raw item spans several lines: not one NDJSON line'
      else part = text
    } else {
      try {
        part = JSON.stringify(value) ?? 'null'
      } catch (err) {
        reason = `not JSON-serializable: ${(err as Error).message}`
      }
    }
    if (part === undefined) {
      parts.push(undefined)
      failed.push({ index, retryable: false, reason: reason! })
    } else {
      parts.push(part)
      indices.push(index)
    }
  }
  return { parts, indices, failed }
}

import type { Unpackr } from 'msgpackr'
import { createUnpackr } from '../codec/codec.ts'
import { Record, recordSize } from '../ring/layout.ts'

/**
 * A batch is a run of ring records (ring/layout.ts) with no WRAP markers:
 *
 *   +--------+---------+-----+--------+---------+-----+ - -
 *   | u32 h0 | item 0  | pad | u32 h1 | item 1  | pad |
 *   +--------+---------+-----+--------+---------+-----+ - -
 *
 * h = length | RAW_FLAG (bit 30) for items given to enqueueRaw.
 * Batches live in pooled shared slabs (pipeline/slab-pool.ts) and are read in
 * place by the sender thread.
 */

let sharedUnpackr: Unpackr | undefined

/** Calls `fn(start, length, raw, index)` for each record of `bytes`. */
export function forEachRecord(
  bytes: Uint8Array,
  fn: (start: number, length: number, raw: boolean, index: number) => void,
): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let pos = 0
  let index = 0
  while (pos < bytes.byteLength) {
    const header = view.getUint32(pos, true)
    const length = header & Record.LENGTH_MASK
    fn(pos + Record.HEADER_BYTES, length, (header & Record.RAW_FLAG) !== 0, index++)
    pos += recordSize(length)
  }
  return index
}

/**
 * Copies the records whose index is in `keep` (ascending) to the front of
 * `bytes` and returns the new byte length. Used to retry only failed items.
 */
export function compactRecords(bytes: Uint8Array, keep: readonly number[]): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let pos = 0
  let index = 0
  let out = 0
  let k = 0
  while (pos < bytes.byteLength && k < keep.length) {
    const size = recordSize(view.getUint32(pos, true) & Record.LENGTH_MASK)
    if (index === keep[k]) {
      if (out !== pos) bytes.copyWithin(out, pos, pos + size)
      out += size
      k++
    }
    pos += size
    index++
  }
  return out
}

/** Copies the records at `indices` (ascending) into a new ArrayBuffer. */
export function extractRecords(bytes: Uint8Array, indices: readonly number[]): Uint8Array {
  const copy = bytes.slice()
  const length = compactRecords(copy, indices)
  return copy.subarray(0, length)
}

/**
 * What a sender receives: `count` items, framed in `bytes`. Valid until the
 * send settles — copy anything kept beyond that.
 */
export class Batch {
  /** Number of items. */
  readonly count: number
  /** The framed records (see batch-format.ts). */
  readonly bytes: Uint8Array
  /** Pipeline-assigned id, stable across retries of the same batch. */
  readonly id: number
  #items: unknown[] | undefined

  constructor(bytes: Uint8Array, count: number, id = 0) {
    this.bytes = bytes
    this.count = count
    this.id = id
  }

  /**
   * The encoded payload of every item: msgpack bytes, or the caller's own
   * bytes for items given to `enqueueRaw` (`raw: true`). Views into the batch.
   */
  payloads(): Array<{ bytes: Uint8Array; raw: boolean }> {
    const out: Array<{ bytes: Uint8Array; raw: boolean }> = []
    forEachRecord(this.bytes, (start, length, raw) => {
      out.push({ bytes: this.bytes.subarray(start, start + length), raw })
    })
    return out
  }

  /**
   * The decoded items, in enqueue order per producer. Items given to
   * `enqueueRaw` come back as their Uint8Array bytes (a copy).
   */
  items(): unknown[] {
    if (this.#items) return this.#items
    const unpackr = (sharedUnpackr ??= createUnpackr())
    const items: unknown[] = new Array(this.count)
    forEachRecord(this.bytes, (start, length, raw, index) => {
      items[index] = raw
        ? this.bytes.slice(start, start + length)
        : unpackr.unpack(this.bytes.subarray(start, start + length))
    })
    this.#items = items
    return items
  }
}

import { Unpackr } from 'msgpackr'

import { BatchRecord, batchRecordSize, ITEM_PACKR_OPTIONS } from '../format/batch-records.ts'

/**
 * Reads the items of a VineQueue batch (format/batch-records.ts) for `dump`.
 * Unlike core's reader (which trusts bytes its own pipeline wrote), every
 * length and count is checked against the frame: a payload that is not a
 * batch, or whose item total differs from the frame header's count, throws
 * before anything of the frame is printed.
 */
const { GROUP_FLAG, RAW_FLAG, LENGTH_MASK, HEADER_BYTES } = BatchRecord

/** One item: a decoded msgpack value, or the caller's bytes for an `enqueueRaw` item. */
export type BatchItem =
  | { readonly raw: false; readonly value: unknown }
  | { readonly raw: true; readonly bytes: Uint8Array }

/** The options every item is written with (records off: each item decodes on its own). */
const unpackr = new Unpackr({ ...ITEM_PACKR_OPTIONS })

export class BatchFormatError extends Error {
  override readonly name = 'BatchFormatError'
}

/** Bytes of a msgpack array header starting with `byte` (fixarray, array16 or array32), or -1. */
function arrayHeaderBytes(byte: number | undefined): number {
  if (byte === undefined) return -1
  if (byte >= 0x90 && byte <= 0x9f) return 1
  if (byte === 0xdc) return 3
  if (byte === 0xdd) return 5
  return -1
}

function decode(bytes: Uint8Array, what: string): unknown {
  try {
    return unpackr.unpack(bytes)
  } catch (err) {
    // msgpackr may quote the data it read: keep the message short.
    throw new BatchFormatError(`${what}: not valid msgpack (${String((err as Error).message).slice(0, 80)})`)
  }
}

/**
 * Every item of `batch` in order. `expected` is the frame header's count.
 * @throws BatchFormatError when the bytes are not a batch of `expected` items.
 */
export function batchItems(batch: Uint8Array, expected: number): BatchItem[] {
  const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength)
  const items: BatchItem[] = []
  let pos = 0
  while (pos < batch.byteLength) {
    if (batch.byteLength - pos < HEADER_BYTES) {
      throw new BatchFormatError(`record at byte ${pos}: ${batch.byteLength - pos} B left, short of a header`)
    }
    const header = view.getUint32(pos, true)
    const length = header & LENGTH_MASK
    const start = pos + HEADER_BYTES
    const end = start + length
    if (end > batch.byteLength) {
      throw new BatchFormatError(`record at byte ${pos}: ${length} B announced, past the end of the batch`)
    }
    const raw = (header & RAW_FLAG) !== 0
    const group = (header & GROUP_FLAG) !== 0
    if (raw && group) throw new BatchFormatError(`record at byte ${pos}: both RAW and GROUP bits set`)
    if (raw) {
      items.push({ raw: true, bytes: batch.subarray(start, end) })
    } else if (!group) {
      items.push({ raw: false, value: decode(batch.subarray(start, end), `record at byte ${pos}`) })
    } else {
      // u32 count, then one msgpack array of that many items.
      if (length < HEADER_BYTES + 1 || arrayHeaderBytes(batch[start + HEADER_BYTES]) < 0) {
        throw new BatchFormatError(`group record at byte ${pos}: no item count and msgpack array`)
      }
      const count = view.getUint32(start, true)
      const values = decode(batch.subarray(start + HEADER_BYTES, end), `group record at byte ${pos}`)
      if (!Array.isArray(values) || values.length !== count) {
        throw new BatchFormatError(
          `group record at byte ${pos}: its count (${count}) does not match its array`,
        )
      }
      for (const value of values) items.push({ raw: false, value })
    }
    pos += batchRecordSize(length)
  }
  if (items.length !== expected) {
    throw new BatchFormatError(`the batch holds ${items.length} item(s), the frame header says ${expected}`)
  }
  return items
}

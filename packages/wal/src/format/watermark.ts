import { decodeCheckedRecord, encodeCheckedRecord } from './checked-record.ts'

/**
 * The acknowledgement watermark, in its own small file (`ack`): every item
 * with a sequence number below `ackedSeq` was delivered.
 *
 *   +-------------+-------------------+-------------+
 *   | magic VQWA  | ackedSeq u64      | CRC32C u32  |   16 bytes, little-endian
 *   +-------------+-------------------+-------------+
 *
 * Created through `ack.tmp` (fdatasync, rename), then overwritten in place:
 * 16 bytes at offset 0 lie in one disk sector, which devices write whole, so
 * a reader sees the old or the new watermark; the CRC catches anything else.
 * A damaged file reads as 0 — everything is delivered again (at-least-once),
 * never skipped.
 */
export const WATERMARK_MAGIC = 0x41575156 // 'VQWA'

export function encodeWatermark(ackedSeq: number): Uint8Array {
  return encodeCheckedRecord(WATERMARK_MAGIC, [ackedSeq])
}

/** The watermark, or undefined when the bytes are not a valid one. */
export function decodeWatermark(bytes: Uint8Array): number | undefined {
  return decodeCheckedRecord(bytes, WATERMARK_MAGIC, 1)?.[0]
}

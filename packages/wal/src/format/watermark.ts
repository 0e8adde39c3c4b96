import { crc32c } from '@node-rs/crc32'

/**
 * The acknowledgement watermark, in its own small file (`ack`): every item
 * with a sequence number below `ackedSeq` was delivered.
 *
 *   +-------------+-------------------+-------------+
 *   | magic VQWA  | ackedSeq u64      | CRC32C u32  |   16 bytes, little-endian
 *   +-------------+-------------------+-------------+
 *
 * Written to `ack.tmp`, fdatasync'ed, then renamed over `ack`: a reader sees
 * the old or the new watermark, never a mix. A damaged file reads as 0 —
 * everything is delivered again (at-least-once), never skipped.
 */
export const WATERMARK_MAGIC = 0x41575156 // 'VQWA'
export const WATERMARK_BYTES = 16

export function encodeWatermark(ackedSeq: number): Uint8Array {
  const out = new Uint8Array(WATERMARK_BYTES)
  const view = new DataView(out.buffer)
  view.setUint32(0, WATERMARK_MAGIC, true)
  view.setBigUint64(4, BigInt(ackedSeq), true)
  view.setUint32(12, crc32c(Buffer.from(out.buffer, 0, 12)), true)
  return out
}

/** The watermark, or undefined when the bytes are not a valid one. */
export function decodeWatermark(bytes: Uint8Array): number | undefined {
  if (bytes.byteLength !== WATERMARK_BYTES) return undefined
  const view = new DataView(bytes.buffer, bytes.byteOffset, WATERMARK_BYTES)
  if (view.getUint32(0, true) !== WATERMARK_MAGIC) return undefined
  if (view.getUint32(12, true) !== crc32c(Buffer.from(bytes.buffer, bytes.byteOffset, 12))) return undefined
  return Number(view.getBigUint64(4, true))
}

import { crc32c } from './crc.ts'

/**
 * The layout of the log's small control files (the watermark `ack`, the
 * clean-close record `clean`): a u32 magic, then u64 fields, then a CRC32C
 * of everything before it, little-endian.
 *
 *   +-------------+-----------+-----+-----------+------------+
 *   | magic u32   | u64       | …   | u64       | CRC32C u32 |   8 + 8 × fields bytes
 *   +-------------+-----------+-----+-----------+------------+
 */
export function encodeCheckedRecord(magic: number, fields: readonly number[]): Uint8Array {
  const out = new Uint8Array(8 + 8 * fields.length)
  const view = new DataView(out.buffer)
  view.setUint32(0, magic, true)
  for (const [i, v] of fields.entries()) view.setBigUint64(4 + 8 * i, BigInt(v), true)
  const crcAt = out.byteLength - 4
  view.setUint32(crcAt, crc32c(out, 0, crcAt), true)
  return out
}

/** The `count` fields, or undefined when the bytes are not a valid record with this magic. */
export function decodeCheckedRecord(bytes: Uint8Array, magic: number, count: number): number[] | undefined {
  const size = 8 + 8 * count
  if (bytes.byteLength !== size) return undefined
  const view = new DataView(bytes.buffer, bytes.byteOffset, size)
  if (view.getUint32(0, true) !== magic) return undefined
  const crcAt = size - 4
  if (view.getUint32(crcAt, true) !== crc32c(bytes, 0, crcAt)) return undefined
  return Array.from({ length: count }, (_, i) => Number(view.getBigUint64(4 + 8 * i, true)))
}

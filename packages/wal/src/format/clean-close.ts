import { crc32c } from '@node-rs/crc32'

/**
 * The clean-close record (`clean`), written by `close()` once everything is
 * durable: which segment was last, its size and the next sequence number.
 *
 *   +-------------+------------------+--------------+-----------------+------------+
 *   | magic VQWC  | firstSeq u64     | size u64     | nextSeq u64     | CRC32C u32 |   32 bytes, LE
 *   +-------------+------------------+--------------+-----------------+------------+
 *
 * When it names the last segment and that file still has exactly that size,
 * opening skips scanning it (as Kafka skips log recovery after a clean
 * shutdown) and appends go to a new segment: the named one is never written
 * again, so the record stays true of it even if it is never removed. The
 * segment's frames are checked by a reader when it reaches them, like any
 * older segment's. Any mismatch, damage or absence: the last segment is
 * scanned as after a crash.
 */
export const CLEAN_MAGIC = 0x43575156 // 'VQWC'
export const CLEAN_BYTES = 32

export interface CleanClose {
  /** First sequence number of the last segment (its name). */
  readonly firstSeq: number
  /** Its size in bytes at close. */
  readonly size: number
  /** The sequence number the next append would have taken. */
  readonly nextSeq: number
}

export function encodeCleanClose(c: CleanClose): Uint8Array {
  const out = new Uint8Array(CLEAN_BYTES)
  const view = new DataView(out.buffer)
  view.setUint32(0, CLEAN_MAGIC, true)
  view.setBigUint64(4, BigInt(c.firstSeq), true)
  view.setBigUint64(12, BigInt(c.size), true)
  view.setBigUint64(20, BigInt(c.nextSeq), true)
  view.setUint32(28, crc32c(Buffer.from(out.buffer, 0, 28)), true)
  return out
}

/** The record, or undefined when the bytes are not a valid one. */
export function decodeCleanClose(bytes: Uint8Array): CleanClose | undefined {
  if (bytes.byteLength !== CLEAN_BYTES) return undefined
  const view = new DataView(bytes.buffer, bytes.byteOffset, CLEAN_BYTES)
  if (view.getUint32(0, true) !== CLEAN_MAGIC) return undefined
  if (view.getUint32(28, true) !== crc32c(Buffer.from(bytes.buffer, bytes.byteOffset, 28))) return undefined
  return {
    firstSeq: Number(view.getBigUint64(4, true)),
    size: Number(view.getBigUint64(12, true)),
    nextSeq: Number(view.getBigUint64(20, true)),
  }
}

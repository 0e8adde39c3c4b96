import { decodeCheckedRecord, encodeCheckedRecord } from './checked-record.ts'

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

export interface CleanClose {
  /** First sequence number of the last segment (its name). */
  readonly firstSeq: number
  /** Its size in bytes at close. */
  readonly size: number
  /** The sequence number the next append would have taken. */
  readonly nextSeq: number
}

export function encodeCleanClose(c: CleanClose): Uint8Array {
  return encodeCheckedRecord(CLEAN_MAGIC, [c.firstSeq, c.size, c.nextSeq])
}

/** The record, or undefined when the bytes are not a valid one. */
export function decodeCleanClose(bytes: Uint8Array): CleanClose | undefined {
  const fields = decodeCheckedRecord(bytes, CLEAN_MAGIC, 3)
  return fields && { firstSeq: fields[0]!, size: fields[1]!, nextSeq: fields[2]! }
}

/**
 * Whether the record still describes a segment: the last one, named by
 * `firstSeq`, of `size` bytes (not empty). Then opening need not scan it.
 */
export function cleanCloseHolds(c: CleanClose | undefined, firstSeq: number, size: number): boolean {
  return c !== undefined && c.firstSeq === firstSeq && c.size === size && size > 0
}

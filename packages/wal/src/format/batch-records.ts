/**
 * The format of a VineQueue batch: what `@vinequeue/core` frames in its
 * ring, hands to senders and appends to the log as a frame's payload. Its
 * one definition lives here, in a module with no imports, because both
 * sides read it: core (which depends on this package) writes and reads
 * batches, and `vinequeue-wal dump` decodes them. Imported through the
 * `@vinequeue/wal/batch-records` subpath, so that a thread that needs the
 * format loads neither the log nor a codec.
 *
 *   +--------+---------+-----+--------+-----------+------------------+-----+ - -
 *   | u32 h0 | item 0  | pad | u32 h1 | u32 count | msgpack array    | pad |
 *   +--------+---------+-----+--------+-----------+------------------+-----+ - -
 *    a single-item record      a group record (enqueueBatch): `count` items
 *
 *   h = payload length (bits 0–29) | RAW (bit 30) | GROUP (bit 31), little-endian;
 *   each record is padded to a multiple of 4 bytes. A raw record's payload is
 *   the caller's own bytes (enqueueRaw); any other item is one msgpack value
 *   written with ITEM_PACKR_OPTIONS.
 */
export const BatchRecord = {
  /** A group record (enqueueBatch): payload = u32 LE item count + one msgpack array. */
  GROUP_FLAG: 0x80000000,
  /** A raw record (enqueueRaw): the payload is the caller's bytes, not msgpack. */
  RAW_FLAG: 0x40000000,
  LENGTH_MASK: 0x3fffffff,
  /** The u32 header before each record's payload (and a group's count word). */
  HEADER_BYTES: 4,
} as const

/** Bytes a record of `length` payload bytes occupies (header + payload + padding to 4). */
export function batchRecordSize(length: number): number {
  return (BatchRecord.HEADER_BYTES + length + 3) & ~3
}

/**
 * The msgpackr options every item is written and read with.
 *
 * Records/shared structures are off (`useRecords: false`): each item must be
 * decodable on its own by any thread — a sender worker, the queue's thread,
 * and (with the WAL) a later process or `vinequeue-wal dump` — with no
 * structure table to keep in step between producer threads. On the bench
 * event records would save size but not time (note `codec.records` in
 * packages/bench/README.md), and batch compression recovers the size.
 */
export const ITEM_PACKR_OPTIONS: { readonly useRecords: false; readonly moreTypes: false } = Object.freeze({
  useRecords: false,
  moreTypes: false,
})

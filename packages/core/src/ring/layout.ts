import { BatchRecord, batchRecordSize } from '@vinequeue/wal/batch-records'

/**
 * Shared-memory layouts of the ring. Everything that names a slot lives here.
 *
 * A lane is a single-producer ring: one lane per producer thread, drained by
 * the pipeline thread. A bare single-producer lane moves several times what
 * a producer can encode (note `lane.spsc` in packages/bench/README.md), so
 * lanes stay SPSC (no CAS on the write side, no contention between producer
 * threads) and the pipeline merges them.
 *
 * Lane SharedArrayBuffer:
 *
 *   byte 0            64              128             192             256
 *   +----------------+---------------+---------------+---------------+------------------- - -
 *   | WRITE          | READ          | WAITING       | CLOSED,       | counters (u64 × 8)
 *   |                |               |               | BACKOFF_US    |
 *   | producer owns  | consumer owns | producer sets | producer sets | one writer per slot
 *   +----------------+---------------+---------------+---------------+------------------- - -
 *   byte HEADER_BYTES (512)
 *   +-------------------------------------------------------------------------------------+
 *   | data: `capacity` bytes (a power of two), records back to back, wrapping             |
 *   +-------------------------------------------------------------------------------------+
 *
 * Each index slot sits on its own 64-byte cache line so the producer's stores
 * to WRITE never invalidate the line the consumer polls for READ (false sharing).
 *
 * WRITE and READ are byte positions counted modulo 2^32 (stored in Int32
 * slots, read with `>>> 0`); `position & (capacity - 1)` is the offset in the
 * data area and `(WRITE - READ) >>> 0` the bytes in use. A capacity that is a
 * power of two ≤ 2^30 keeps that arithmetic exact across the 2^32 wrap.
 *
 * A record is a 4-byte header then the payload, padded to a multiple of 4:
 *
 *   +---------------------------------------+------------------------+-----+
 *   | u32: GROUP (bit 31) | RAW (bit 30) | len | payload (len bytes)  | pad |
 *   +---------------------------------------+------------------------+-----+
 *
 * A plain record holds one item (msgpack, or raw bytes). A GROUP record holds
 * a whole `enqueueBatch` chunk: a u32 item count then one msgpack array —
 * packing the array in one call is what lets enqueueBatch run at the speed of
 * msgpackr's own array packing. Counters and batch limits count items.
 *
 * A record never straddles the end of the data area: when it does not fit in
 * the tail, the producer writes the WRAP marker (0xFFFFFFFF) there and the
 * record starts at offset 0 of the next lap. The same record encoding, minus
 * WRAP, is the batch format (batch/batch-format.ts), so the pipeline moves
 * runs of records with one copy.
 *
 * Memory ordering: the producer writes record bytes with plain stores, then
 * publishes them with `Atomics.store(WRITE)` (sequentially consistent, so
 * every earlier store is visible to a thread that `Atomics.load`s the new
 * WRITE). The consumer copies records out, then releases the space with a
 * compare-exchange on READ. The CAS (rather than a store) is what lets a
 * producer under the `dropOldest` policy evict records concurrently: whichever
 * side wins the CAS owns the records; the loser discards what it read.
 */

/** Bytes before the data area of a lane. */
export const LANE_HEADER_BYTES = 512

/** Int32 slot indices in a lane header (16 ints = 64 bytes apart). */
export const LaneSlot = {
  /** Published write position (producer stores, consumer loads). */
  WRITE: 0,
  /** Read position (consumer CAS; producer CAS under dropOldest). */
  READ: 16,
  /** 1 while a producer waits for room; the consumer notifies READ and clears it. */
  WAITING: 32,
  /** 1 once the producer closed the lane: drained, then forgotten. */
  CLOSED: 48,
  /**
   * µs the producer's pacing currently allots each async enqueue (the
   * `backoffMs` metric). Beside CLOSED: both are the producer's, stored
   * rarely (when the value changes), so the line stays quiet.
   */
  BACKOFF_US: 49,
} as const

/** BigUint64 slot indices (u64 view of the same buffer, starting at byte 256). */
export const LaneCounter = {
  /** Items accepted into the lane (producer). */
  ENQUEUED: 32,
  /** Items dropped because the lane was full under `dropNewest` (producer). */
  DROPPED_NEWEST: 33,
  /** Items evicted under `dropOldest` (producer). */
  DROPPED_OLDEST: 34,
  /** Enqueue calls refused with QueueFullError / BackpressureError (producer). */
  REJECTED: 35,
  /** Async enqueue calls that pacing made sleep (producer). */
  PACED: 36,
  /** Items taken out of the lane by the pipeline (consumer). */
  CONSUMED: 40,
} as const

/**
 * Record header values. Records in a lane are batch records (their format is
 * @vinequeue/wal/batch-records, which `vinequeue-wal dump` reads too), plus
 * WRAP: a header that says the rest of the data area is unused and the next
 * record starts at offset 0.
 */
export const Record: {
  readonly WRAP: 0xffffffff
  readonly GROUP_FLAG: typeof BatchRecord.GROUP_FLAG
  readonly RAW_FLAG: typeof BatchRecord.RAW_FLAG
  readonly LENGTH_MASK: typeof BatchRecord.LENGTH_MASK
  readonly HEADER_BYTES: typeof BatchRecord.HEADER_BYTES
} = {
  WRAP: 0xffffffff,
  GROUP_FLAG: BatchRecord.GROUP_FLAG,
  RAW_FLAG: BatchRecord.RAW_FLAG,
  LENGTH_MASK: BatchRecord.LENGTH_MASK,
  HEADER_BYTES: BatchRecord.HEADER_BYTES,
}

/** Largest lane capacity: keeps positions exact modulo 2^32. */
export const MAX_LANE_CAPACITY: number = 2 ** 30

/** Bytes a record of `length` payload bytes occupies (header + payload + padding). */
export const recordSize: (length: number) => number = batchRecordSize

/** Rounds up to the next power of two (≥ 1024). */
export function laneCapacityFor(bytes: number): number {
  let cap = 1024
  while (cap < bytes) cap *= 2
  return cap
}

/** Allocates a lane with `capacity` data bytes (already a power of two), its pages faulted in. */
export function createLaneBuffer(capacity: number): SharedArrayBuffer {
  return prefault(new SharedArrayBuffer(LANE_HEADER_BYTES + capacity))
}

/**
 * Writes one byte per 4 KiB page of a fresh buffer. The OS maps anonymous
 * memory lazily: without this the first lap of a lane takes a page fault
 * every ~40 records, which showed as a much slower enqueue and a multi-µs
 * p99 until the ring had wrapped once (note `lane.prefault` in
 * packages/bench/README.md). Paid once, at creation, off the enqueue path.
 */
export function prefault(sab: SharedArrayBuffer): SharedArrayBuffer {
  const u8 = new Uint8Array(sab)
  for (let i = 0; i < u8.length; i += 4096) u8[i] = 0
  return sab
}

/**
 * `prefault` for a buffer that may be in use already: an atomic add of 0
 * faults the page in (a write) without changing a byte another thread may
 * be writing.
 */
export function prefaultInUse(sab: SharedArrayBuffer): void {
  const u8 = new Uint8Array(sab)
  for (let i = 0; i < u8.length; i += 4096) Atomics.add(u8, i, 0)
}

/** Data capacity of a lane buffer. */
export function laneCapacity(sab: SharedArrayBuffer): number {
  return sab.byteLength - LANE_HEADER_BYTES
}

/**
 * Control block shared by every thread of one queue (Int32 slots, 64 bytes apart).
 *
 *   +-----------+-----------+-----------+-----------+
 *   | DOORBELL  | STATE     | CIRCUIT   | REJECT    |
 *   +-----------+-----------+-----------+-----------+
 */
export const ControlSlot = {
  /**
   * Doorbell below: non-zero while the pipeline sleeps. A producer that
   * publishes and sees ASLEEP_WAKE_ME swaps it to AWAKE and notifies: one
   * futex wake per sleep, not per record (a wake per publish cut throughput
   * several times: note `lane.doorbell` in packages/bench/README.md).
   */
  DOORBELL: 0,
  /** QueueState below. */
  STATE: 16,
  /** Circuit state written by the sender side (0 closed, 1 open, 2 half-open). */
  CIRCUIT: 32,
  /**
   * RejectReason bits, written by the pipeline thread: while any is set,
   * every enqueue throws (one Atomics.load on the enqueue path).
   */
  REJECT: 48,
} as const

/** Values of ControlSlot.DOORBELL. */
export const Doorbell = {
  /** The pipeline is running (or about to look at the lanes again). */
  AWAKE: 0,
  /** The pipeline sleeps until a producer publishes (or a message, ack or timer wakes it). */
  ASLEEP_WAKE_ME: 1,
  /**
   * The pipeline sleeps but producers need not wake it: it cannot drain now
   * (every slab taken, or the WAL full) and waits for a batch to settle.
   */
  ASLEEP_FOR_ACKS: 2,
} as const

/** Bits of ControlSlot.REJECT. */
export const RejectReason = {
  /** The circuit is open and `circuitBreaker.whileOpen` is 'reject'. */
  CIRCUIT_OPEN: 1,
  /** The WAL is at `wal.maxBytes` and `wal.fullPolicy` is 'reject'. */
  WAL_FULL: 2,
} as const

export const CONTROL_BYTES = 256

export const QueueState = {
  CREATED: 0,
  RUNNING: 1,
  CLOSED: 2,
  DOWN: 3,
} as const

export function createControlBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(CONTROL_BYTES)
}

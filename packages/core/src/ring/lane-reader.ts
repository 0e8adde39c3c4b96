import { LANE_HEADER_BYTES, LaneCounter, LaneSlot, laneCapacity, Record, recordSize } from './layout.ts'

/**
 * The consumer side of one lane (the pipeline thread, or the queue's own
 * thread once the pipeline is gone). Copies runs of records straight into a
 * batch buffer — the record encoding is the batch encoding — and releases the
 * space with a CAS on READ (see layout.ts for why a CAS).
 */
export class LaneReader {
  readonly sab: SharedArrayBuffer
  readonly capacity: number
  readonly #mask: number
  readonly #i32: Int32Array
  readonly #u32: Uint32Array
  readonly #u8: Uint8Array
  readonly #u64: BigUint64Array
  #consumed: number
  /** Bytes copied by the last successful `drainInto`. */
  lastBytes = 0

  constructor(sab: SharedArrayBuffer) {
    this.sab = sab
    this.capacity = laneCapacity(sab)
    this.#mask = this.capacity - 1
    this.#i32 = new Int32Array(sab)
    this.#u32 = new Uint32Array(sab)
    this.#u8 = new Uint8Array(sab)
    this.#u64 = new BigUint64Array(sab)
    this.#consumed = Number(this.#u64[LaneCounter.CONSUMED])
  }

  /**
   * Takes everything published, for when no batch will be cut any more
   * (stop, or a dead pipeline): the records as framed bytes and their item
   * count. Retries a few times if a dropOldest producer races it.
   */
  drainAll(): { bytes: Uint8Array; count: number } {
    for (let tries = 0; tries < 100; tries++) {
      const scratch = new Uint8Array(this.usedBytes())
      const n = this.drainInto(scratch, 0, scratch.byteLength, Number.MAX_SAFE_INTEGER, true)
      if (n >= 0) return { bytes: scratch.subarray(0, this.lastBytes), count: n }
    }
    return { bytes: new Uint8Array(0), count: 0 }
  }

  /** Published bytes not yet consumed. */
  usedBytes(): number {
    return (Atomics.load(this.#i32, LaneSlot.WRITE) - Atomics.load(this.#i32, LaneSlot.READ)) >>> 0
  }

  isEmpty(): boolean {
    return Atomics.load(this.#i32, LaneSlot.WRITE) === Atomics.load(this.#i32, LaneSlot.READ)
  }

  /** A producer waits for room in this lane (enqueueAsync under `block`). */
  hasWaiter(): boolean {
    return Atomics.load(this.#i32, LaneSlot.WAITING) === 1
  }

  /** True once the producer closed the lane and everything in it was consumed. */
  isFinished(): boolean {
    return Atomics.load(this.#i32, LaneSlot.CLOSED) === 1 && this.isEmpty()
  }

  /** Current published write position (for flush snapshots). */
  writePosition(): number {
    return Atomics.load(this.#i32, LaneSlot.WRITE) >>> 0
  }

  /** True when the consumer has read past `position` (wrapping compare). */
  reached(position: number): boolean {
    return ((Atomics.load(this.#i32, LaneSlot.READ) - position) | 0) >= 0
  }

  /**
   * Copies whole records into `dst` at `dstOffset` — at most `maxItems` items
   * (a group record counts its items) and `maxBytes` bytes, framing included;
   * with `takeFirst` the first record is taken whatever its size or item
   * count — calls `beforeRelease(items, bytes)`, then releases them from the
   * lane. Returns the number of items copied (0 when empty or when the first
   * record does not fit), or -1 when a `dropOldest` producer evicted them
   * first (nothing was taken; the caller may simply try again). `lastBytes`
   * holds the bytes copied.
   */
  drainInto(
    dst: Uint8Array,
    dstOffset: number,
    maxBytes: number,
    maxItems: number,
    takeFirst = false,
    beforeRelease?: (items: number, bytes: number) => void,
  ): number {
    this.lastBytes = 0
    const r = Atomics.load(this.#i32, LaneSlot.READ) >>> 0
    const w = Atomics.load(this.#i32, LaneSlot.WRITE) >>> 0
    if (r === w) return 0
    let pos = r
    let items = 0
    let bytes = 0
    let runStart = r & this.#mask
    let runBytes = 0
    let out = dstOffset
    const room = dst.byteLength - dstOffset
    while (pos !== w && (items < maxItems || (takeFirst && items === 0))) {
      const off = pos & this.#mask
      if (off === 0 && runBytes > 0) {
        // A record ended exactly at the end of the data area (no WRAP
        // needed): the run cannot continue past it; start a new one at 0.
        dst.set(this.#u8.subarray(LANE_HEADER_BYTES + runStart, LANE_HEADER_BYTES + runStart + runBytes), out)
        out += runBytes
        runStart = 0
        runBytes = 0
      }
      // Bytes published past `pos`; everything read below is checked against
      // it and against `dst`, because under dropOldest a producer may have
      // evicted and overwritten these records since READ was loaded: then
      // the header is arbitrary bytes, and -1 (nothing taken, try again) is
      // what the CAS below would have said anyway.
      const avail = (w - pos) | 0
      const header = this.#u32[(LANE_HEADER_BYTES + off) >>> 2]!
      if (header === Record.WRAP) {
        const tail = this.capacity - off
        if (tail > avail) return -1
        if (runBytes > 0) {
          dst.set(
            this.#u8.subarray(LANE_HEADER_BYTES + runStart, LANE_HEADER_BYTES + runStart + runBytes),
            out,
          )
          out += runBytes
        }
        pos = (pos + tail) >>> 0
        runStart = 0
        runBytes = 0
        continue
      }
      const size = recordSize(header & Record.LENGTH_MASK)
      const n = header >= Record.GROUP_FLAG ? this.#u32[(LANE_HEADER_BYTES + off + 4) >>> 2]! : 1
      if (size > avail || n < 1 || n > size) return -1
      if ((items + n > maxItems || bytes + size > maxBytes) && !(takeFirst && items === 0)) break
      if (bytes + size > room) return -1 // only a garbage header can outgrow the destination
      bytes += size
      runBytes += size
      items += n
      pos = (pos + size) >>> 0
    }
    if (runBytes > 0) {
      dst.set(this.#u8.subarray(LANE_HEADER_BYTES + runStart, LANE_HEADER_BYTES + runStart + runBytes), out)
    }
    if (pos === r) return 0
    // Lets the caller record the copy in shared memory before the lane
    // forgets the records: a crash in between duplicates, never loses.
    beforeRelease?.(items, bytes)
    if (Atomics.compareExchange(this.#i32, LaneSlot.READ, r | 0, pos | 0) !== (r | 0)) {
      // A producer evicted some of these records first (dropOldest): they were
      // counted as dropped by it, so what we copied is void.
      return -1
    }
    this.#consumed += items
    Atomics.store(this.#u64, LaneCounter.CONSUMED, BigInt(this.#consumed))
    if (Atomics.load(this.#i32, LaneSlot.WAITING) === 1) {
      Atomics.store(this.#i32, LaneSlot.WAITING, 0)
      Atomics.notify(this.#i32, LaneSlot.READ)
    }
    this.lastBytes = bytes
    return items
  }
}

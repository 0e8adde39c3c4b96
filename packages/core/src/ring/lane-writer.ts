import {
  ControlSlot,
  Doorbell,
  LANE_HEADER_BYTES,
  LaneCounter,
  LaneSlot,
  laneCapacity,
  Record,
  recordSize,
} from './layout.ts'

/** Publish at least every this many records even inside one synchronous burst. */
const PUBLISH_EVERY_RECORDS = 64

/**
 * Inside a burst, ring a sleeping pipeline only once this many items wait
 * unannounced (the end of a burst — a microtask — always rings, and so does
 * a full lane). A notify that wakes an Atomics.waitAsync waiter costs the
 * producer far more than a publish that wakes nobody; waking every 64
 * records cost a noticeable share of enqueue throughput and set the p99
 * (note `lane.wake` in packages/bench/README.md). While items keep
 * coming the pipeline polls every millisecond and needs no ringing at all.
 */
const WAKE_AFTER_RECORDS = 8192

/**
 * The producer side of one lane. Not thread-safe: exactly one thread writes a lane.
 *
 * Records are written with plain stores at a private position (`#write`) and
 * become visible to the pipeline when `publish()` stores it into WRITE. The
 * producer publishes every PUBLISH_EVERY_RECORDS records and, through a
 * microtask, at the end of the current synchronous burst — a single store per
 * burst instead of one per record: a store to WRITE per record would keep
 * the line the pipeline polls bouncing between the two cores.
 */
export class LaneWriter {
  readonly capacity: number
  readonly #mask: number
  /** Bytes the lane may hold before the hard limit applies. */
  readonly #limit: number
  readonly #i32: Int32Array
  readonly #u32: Uint32Array
  readonly #u8: Uint8Array
  readonly #u64: BigUint64Array
  readonly #control: Int32Array
  #write: number
  #published: number
  /** Last READ seen; refreshed only when the lane looks full. */
  #read: number
  #pending = 0
  /** Records published since the doorbell was last checked. */
  #unannounced = 0
  #scheduled = false
  /** Suppresses intermediate publishes while an atomic batch is being written. */
  #holding = false
  enqueued = 0
  droppedNewest = 0
  droppedOldest = 0
  rejected = 0
  paced = 0
  /** Bytes this producer evicted (dropOldest): READ moved, but the pipeline took none of them. */
  evictedBytes = 0
  #backoffUs = 0
  readonly #publishTask = (): void => {
    this.#scheduled = false
    if (!this.#holding) this.publish()
  }

  constructor(sab: SharedArrayBuffer, control: SharedArrayBuffer, hardLimitRatio: number) {
    this.capacity = laneCapacity(sab)
    this.#mask = this.capacity - 1
    this.#limit = Math.max(Record.HEADER_BYTES * 2, Math.floor(this.capacity * hardLimitRatio) & ~3)
    this.#i32 = new Int32Array(sab)
    this.#u32 = new Uint32Array(sab)
    this.#u8 = new Uint8Array(sab)
    this.#u64 = new BigUint64Array(sab)
    this.#control = new Int32Array(control)
    this.#write = Atomics.load(this.#i32, LaneSlot.WRITE) >>> 0
    this.#published = this.#write
    this.#read = Atomics.load(this.#i32, LaneSlot.READ) >>> 0
    this.enqueued = Number(this.#u64[LaneCounter.ENQUEUED])
  }

  /** Bytes in use as this producer sees them (its unpublished records included). */
  usedBytes(): number {
    this.#read = Atomics.load(this.#i32, LaneSlot.READ) >>> 0
    return (this.#write - this.#read) >>> 0
  }

  /** Fill ratio against the whole capacity. */
  fill(): number {
    return this.usedBytes() / this.capacity
  }

  /**
   * Makes room for a record of `length` payload bytes and writes its header.
   * Returns the byte index where the payload goes, or -1 when the hard limit
   * leaves no room (nothing was written then).
   */
  reserve(length: number, raw: boolean, group = false): number {
    const need = recordSize(length)
    let off = this.#write & this.#mask
    const tail = this.capacity - off
    const total = this.#spaceFor(length)
    if (((this.#write - this.#read) >>> 0) + total > this.#limit) {
      this.#read = Atomics.load(this.#i32, LaneSlot.READ) >>> 0
      if (((this.#write - this.#read) >>> 0) + total > this.#limit) return -1
    }
    if (need > tail) {
      this.#u32[(LANE_HEADER_BYTES + off) >>> 2] = Record.WRAP
      this.#write = (this.#write + tail) >>> 0
      off = 0
    }
    this.#u32[(LANE_HEADER_BYTES + off) >>> 2] = raw
      ? (length | Record.RAW_FLAG) >>> 0
      : group
        ? (length | Record.GROUP_FLAG) >>> 0
        : length
    this.#write = (this.#write + need) >>> 0
    return LANE_HEADER_BYTES + off + Record.HEADER_BYTES
  }

  /** Data offset of the (private) write position. */
  get writeOffset(): number {
    return this.#write & this.#mask
  }

  /** The lane's bytes, for the payload copy after `reserve`. */
  get bytes(): Uint8Array {
    return this.#u8
  }

  /** Writes a group record's item count at the payload index `at` returned by `reserve`. */
  setGroupCount(at: number, count: number): void {
    this.#u32[at >>> 2] = count
  }

  /** Counts one accepted record and schedules its publication. */
  committed(count: number): void {
    this.enqueued += count
    this.#pending += count
    if (this.#holding) return
    if (this.#pending >= PUBLISH_EVERY_RECORDS) this.#publish(false)
    else if (!this.#scheduled) {
      this.#scheduled = true
      queueMicrotask(this.#publishTask)
    }
  }

  /** Starts an all-or-nothing group of records (enqueueBatch). */
  beginGroup(): number {
    if (this.#pending > 0) this.publish()
    this.#holding = true
    return this.#write
  }

  /** Ends a group: keeps it (publishes) or rolls the private position back. */
  endGroup(start: number, keep: boolean, count: number): void {
    this.#holding = false
    if (keep) {
      this.enqueued += count
      this.#pending += count
      // Visible now; the pipeline is rung at the end of the burst (or past
      // WAKE_AFTER_RECORDS), like single records.
      this.#publish(false)
      if (!this.#scheduled) {
        this.#scheduled = true
        queueMicrotask(this.#publishTask)
      }
    } else {
      this.#write = start
    }
  }

  /** Makes every written record visible to the pipeline and wakes it if it sleeps. */
  publish(): void {
    this.#publish(true)
  }

  #publish(wake: boolean): void {
    if (this.#write !== this.#published) {
      this.#published = this.#write
      Atomics.store(this.#i32, LaneSlot.WRITE, this.#write | 0)
    }
    this.#unannounced += this.#pending
    this.#pending = 0
    // Drop and rejection counters are stored when they change (countersChanged).
    Atomics.store(this.#u64, LaneCounter.ENQUEUED, BigInt(this.enqueued))
    if (!wake && this.#unannounced < WAKE_AFTER_RECORDS) return
    this.#unannounced = 0
    // seq-cst store above, then this load: pairs with the pipeline's store of
    // DOORBELL = 1 followed by its load of WRITE, so one of us sees the other.
    // Compare-and-swap, never a plain exchange: between the load and the write
    // the pipeline may have woken, run a pass and gone to sleep for acks
    // (ASLEEP_FOR_ACKS); overwriting that with AWAKE would make its next kick
    // skip the notify, and the pipeline would sleep for good.
    if (
      Atomics.load(this.#control, ControlSlot.DOORBELL) === Doorbell.ASLEEP_WAKE_ME &&
      Atomics.compareExchange(
        this.#control,
        ControlSlot.DOORBELL,
        Doorbell.ASLEEP_WAKE_ME,
        Doorbell.AWAKE,
      ) === Doorbell.ASLEEP_WAKE_ME
    ) {
      Atomics.notify(this.#control, ControlSlot.DOORBELL)
    }
  }

  #storeCounters(): void {
    Atomics.store(this.#u64, LaneCounter.ENQUEUED, BigInt(this.enqueued))
    Atomics.store(this.#u64, LaneCounter.DROPPED_NEWEST, BigInt(this.droppedNewest))
    Atomics.store(this.#u64, LaneCounter.DROPPED_OLDEST, BigInt(this.droppedOldest))
    Atomics.store(this.#u64, LaneCounter.REJECTED, BigInt(this.rejected))
    Atomics.store(this.#u64, LaneCounter.PACED, BigInt(this.paced))
  }

  /** The consumer's position now (byte position modulo 2^32). */
  readPosition(): number {
    this.#read = Atomics.load(this.#i32, LaneSlot.READ) >>> 0
    return this.#read
  }

  /** Publishes the pace of async enqueues (µs per call) when it changed. */
  setBackoff(us: number): void {
    if (us === this.#backoffUs) return
    this.#backoffUs = us
    Atomics.store(this.#i32, LaneSlot.BACKOFF_US, us)
  }

  /** Publishes counters that changed without a record (drops, rejections). */
  countersChanged(): void {
    if (!this.#holding) this.#storeCounters()
  }

  /**
   * Evicts the oldest published records until `length` more bytes would fit,
   * for the `dropOldest` policy. Returns false when even an empty lane (but for
   * this producer's unpublished records) would not fit them.
   */
  evictFor(length: number): boolean {
    const total = this.#spaceFor(length)
    for (;;) {
      const r = Atomics.load(this.#i32, LaneSlot.READ) >>> 0
      this.#read = r
      if (((this.#write - r) >>> 0) + total <= this.#limit) return true
      if (r === this.#published) return false
      // Walk one record (or a WRAP) from r; the consumer may race us for it.
      const roff = r & this.#mask
      const header = this.#u32[(LANE_HEADER_BYTES + roff) >>> 2]!
      let next: number
      let items = 0
      if (header === Record.WRAP) {
        next = (r + (this.capacity - roff)) >>> 0
      } else {
        next = (r + recordSize(header & Record.LENGTH_MASK)) >>> 0
        items = header >= Record.GROUP_FLAG ? this.#u32[(LANE_HEADER_BYTES + roff + 4) >>> 2]! : 1
      }
      if (Atomics.compareExchange(this.#i32, LaneSlot.READ, r | 0, next | 0) === (r | 0)) {
        this.droppedOldest += items
        this.evictedBytes += (next - r) >>> 0
        this.#read = next
      }
    }
  }

  /** Position to wait on (READ) and a flag so the consumer notifies when it moves. */
  armWait(): number {
    Atomics.store(this.#i32, LaneSlot.WAITING, 1)
    return Atomics.load(this.#i32, LaneSlot.READ)
  }

  /**
   * Resolves when the consumer moves READ away from `expectedRead` or after
   * `timeoutMs`. The timer is ref'd: a waiting producer keeps its thread alive
   * (Atomics.waitAsync alone does not hold the event loop open).
   */
  waitForRoom(expectedRead: number, timeoutMs: number): Promise<void> {
    const res = Atomics.waitAsync(this.#i32, LaneSlot.READ, expectedRead, timeoutMs)
    if (!res.async) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs + 1)
      res.value.then(() => {
        clearTimeout(timer)
        resolve()
      })
    })
  }

  /**
   * The data offset of the write position when everything from there to the
   * end of the data area is free (no unconsumed record follows it) and at
   * least `minBytes` long; otherwise -1. Re-reads READ only when the cached
   * value says the lane is wrapped.
   */
  freeTailOffset(minBytes: number): number {
    const off = this.#write & this.#mask
    if (this.capacity - off < minBytes) return -1
    if ((this.#write - this.#read) >>> 0 !== 0 && (this.#read & this.#mask) >= off) {
      this.#read = Atomics.load(this.#i32, LaneSlot.READ) >>> 0
      const used = (this.#write - this.#read) >>> 0
      if (used !== 0 && (this.#read & this.#mask) >= off) return -1
    }
    return off
  }

  /**
   * Lane bytes a record of `length` payload bytes takes at the write
   * position: its size, plus the tail it skips when it does not fit there.
   */
  #spaceFor(length: number): number {
    const need = recordSize(length)
    const tail = this.capacity - (this.#write & this.#mask)
    return need <= tail ? need : tail + need
  }

  /** Whether a record of `length` payload bytes fits now (re-reads READ). */
  hasRoom(length: number): boolean {
    const total = this.#spaceFor(length)
    this.#read = Atomics.load(this.#i32, LaneSlot.READ) >>> 0
    return ((this.#write - this.#read) >>> 0) + total <= this.#limit
  }

  /** Marks the lane closed; the pipeline drains what is left and forgets it. */
  close(): void {
    this.setBackoff(0)
    this.publish()
    Atomics.store(this.#i32, LaneSlot.CLOSED, 1)
    this.publish()
  }
}

import { prefault, prefaultInUse } from '../ring/layout.ts'

/**
 * Pooled shared slabs that hold batches. The pipeline fills a slab straight
 * from the ring; sender threads read it in place (no copy, no clone); the slab
 * returns to the pool when its batch settles. Because a slab is shared, a
 * batch survives a sender thread that crashes or is terminated mid-send, and
 * the host can still read every unsettled batch if the pipeline thread dies.
 *
 * Slab SharedArrayBuffer:
 *
 *   +---------+---------+---------+---------+------------------------------+
 *   | STATE   | COUNT   | BYTES   | ID      | records (batch-format.ts)    |
 *   +---------+---------+---------+---------+------------------------------+
 *   0         4         8         12        SLAB_HEADER_BYTES (16)
 *
 * STATE/COUNT/BYTES are stored with Atomics by the pipeline after the records
 * are written, so a reader that sees STATE != FREE sees a whole batch. ID is
 * the batch's cut id while IN_FLIGHT (0 otherwise).
 *
 * A Slab is only this buffer and its extent; what the pipeline and the
 * dispatcher know of the batch in it (id, attempts, WAL position) is a
 * Flight beside it (flight.ts), and the open batch's linger start is the
 * pipeline's.
 */
export const SLAB_HEADER_BYTES = 16

export const SlabSlot = { STATE: 0, COUNT: 1, BYTES: 2, ID: 3 } as const

export const SlabState = { FREE: 0, FILLING: 1, IN_FLIGHT: 2 } as const

let nextUid = 1

export class Slab {
  /** Names the slab in messages (a SharedArrayBuffer posted twice arrives as two objects). */
  readonly uid: number = nextUid++
  readonly sab: SharedArrayBuffer
  readonly header: Int32Array
  /** The record area. */
  readonly data: Uint8Array
  /** Items in the record area. */
  count = 0
  /** Bytes of records in the record area. */
  bytes = 0
  /** A timed-out in-thread send may still read it: never reuse. */
  tainted = false

  /** `faulted` false: its pages are faulted in later (SlabPool.prefault). */
  constructor(capacity: number, faulted = true) {
    const sab = new SharedArrayBuffer(SLAB_HEADER_BYTES + capacity)
    this.sab = faulted ? prefault(sab) : sab
    this.header = new Int32Array(this.sab, 0, 4)
    this.data = new Uint8Array(this.sab, SLAB_HEADER_BYTES)
  }

  /** Publishes the extent and `state` (with the batch's cut `id` while in flight). */
  setState(state: number, id = 0): void {
    Atomics.store(this.header, SlabSlot.COUNT, this.count)
    Atomics.store(this.header, SlabSlot.BYTES, this.bytes)
    Atomics.store(this.header, SlabSlot.ID, id)
    Atomics.store(this.header, SlabSlot.STATE, state)
  }

  /** Stores a filling slab's extent (for recovery by the host) without changing its fields. */
  publishExtent(count: number, bytes: number): void {
    Atomics.store(this.header, SlabSlot.COUNT, count)
    Atomics.store(this.header, SlabSlot.BYTES, bytes)
  }

  view(): Uint8Array {
    return this.data.subarray(0, this.bytes)
  }
}

/** A fixed number of slabs: when none is free the pipeline stops draining (backpressure). */
export class SlabPool {
  readonly #free: Slab[] = []
  readonly #capacity: number
  readonly all: Slab[] = []
  readonly #onNew: (slab: Slab) => void
  readonly #onRetire: (slab: Slab) => void

  /** `onNew`/`onRetire`: a slab joins or leaves the set (the host tracks it for crash recovery). */
  constructor(count: number, capacity: number, onNew: (slab: Slab) => void, onRetire: (slab: Slab) => void) {
    this.#capacity = capacity
    this.#onNew = onNew
    this.#onRetire = onRetire
    for (let i = 0; i < count; i++) this.#free.push(this.#create())
  }

  /** (Its pages are not faulted in yet: see prefault.) */
  #create(): Slab {
    const slab = new Slab(this.#capacity, false)
    this.all.push(slab)
    return slab
  }

  /**
   * Faults in the pages of every slab (megabytes: a page fault each 4 KiB,
   * milliseconds in all). Called by the pipeline once start() has its
   * answer rather than at construction, which is on start()'s path; safe
   * while slabs are in use.
   */
  prefault(): void {
    for (const slab of this.all) prefaultInUse(slab.sab)
  }

  get available(): number {
    return this.#free.length
  }

  /**
   * A free slab, or undefined when all are taken. With `minBytes` larger than
   * a slab (a batch recovered from the WAL, written under other limits), a
   * slab of that size stands in for one of the pool's until it is released.
   */
  acquire(minBytes = 0): Slab | undefined {
    let slab = this.#free.pop()
    if (!slab) return undefined
    if (slab.data.byteLength < minBytes) {
      slab = this.#replace(slab, minBytes)
      slab.tainted = true // replaced by a pool-sized slab on release
    }
    slab.count = 0
    slab.bytes = 0
    slab.setState(SlabState.FILLING)
    return slab
  }

  release(slab: Slab): void {
    slab.count = 0
    slab.bytes = 0
    slab.setState(SlabState.FREE)
    // A tainted slab may still be read by an abandoned send (or is oversize): replace it.
    this.#free.push(slab.tainted ? this.#replace(slab, this.#capacity) : slab)
  }

  /** Retires `old` and adds a new slab of `capacity` bytes in its place. */
  #replace(old: Slab, capacity: number): Slab {
    this.all.splice(this.all.indexOf(old), 1)
    this.#onRetire(old)
    const fresh = new Slab(capacity)
    this.all.push(fresh)
    this.#onNew(fresh)
    return fresh
  }
}

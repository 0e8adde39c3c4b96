import type { AdaptiveConcurrency } from './adaptive-concurrency.ts'

/** What the window reads of a batch. */
export interface WindowEntry {
  /** The batch's cut id (ids grow in cut order). */
  readonly id: number
  /** Sequence number of the batch's first item in the WAL; undefined: not in the WAL. */
  readonly walSeq?: number | undefined
  /** An attempt failed; the batch waits for (or is in) a retry. */
  readonly retrying: boolean
}

/**
 * The batches between cut and settled: `unsettled` (every one, by id) and,
 * among them, those `waiting` for an in-flight slot (FIFO). At most
 * `limit` are in flight (dispatched and not settled, retries included):
 * maxInFlightBatches, or the adaptive concurrency limit when that is on.
 * A batch the WAL holds keeps its slot after it settled (`settle(e, true)`)
 * until the acknowledgement covering it is written (`release`): a crash
 * re-delivers what was delivered and not yet acknowledged, so counting
 * those batches as in flight is what bounds the duplicates of a crash by
 * the window (see the core README, "Duplicates after a crash").
 * The window also answers what the WAL and flushes ask of them: the lowest
 * unsettled WAL sequence number (the watermark may not pass it), whether any
 * batch up to an id is unsettled.
 */
export class InFlightWindow<E extends WindowEntry> {
  readonly #max: number
  readonly #concurrency: AdaptiveConcurrency | undefined
  readonly #send: (entry: E) => void
  readonly #unsettled = new Map<number, E>()
  readonly #waiting: E[] = []
  /** WAL sequence numbers of settled batches still holding their slot (see `release`). */
  readonly #held: number[] = []
  #inFlight = 0

  /** `send`: hands a batch to the dispatcher once it has a slot. */
  constructor(maxInFlight: number, concurrency: AdaptiveConcurrency | undefined, send: (entry: E) => void) {
    this.#max = maxInFlight
    this.#concurrency = concurrency
    this.#send = send
  }

  /** Batches in flight at most (the adaptive limit when on). */
  get limit(): number {
    return this.#concurrency?.limit ?? this.#max
  }

  get inFlight(): number {
    return this.#inFlight
  }

  /** Unsettled batches (in flight, waiting for a slot, or for the WAL's commit). */
  get size(): number {
    return this.#unsettled.size
  }

  /** Whether another batch may be taken on without waiting beyond maxInFlightBatches (in flight + waiting). */
  get hasRoom(): boolean {
    return this.#inFlight + this.#waiting.length < this.#max
  }

  /** Every unsettled batch, in cut order. */
  unsettled(): IterableIterator<E> {
    return this.#unsettled.values()
  }

  /** Takes on a cut batch; it waits (outside the window's queue) until `enqueue`d. */
  add(entry: E): void {
    this.#unsettled.set(entry.id, entry)
  }

  /** Queues a batch for a slot (call `dispatch` to send what fits). */
  enqueue(entry: E): void {
    this.#waiting.push(entry)
  }

  /**
   * Sends waiting batches, oldest first, while there are slots. A slot held
   * by a batch logged after the next waiting one does not count against it:
   * that slot cannot be released before the waiting batch settles (the
   * watermark stops at it), so counting it could only deadlock. Batches are
   * queued in log order, so this does not happen (wal-backlog.ts `load`);
   * if it ever did, the window would go past its limit by those batches
   * rather than stop.
   */
  dispatch(): void {
    const limit = this.limit
    while (this.#waiting.length > 0 && this.#inFlight - this.#heldAfter(this.#waiting[0]!) < limit) {
      this.#inFlight++
      this.#concurrency?.started(this.#inFlight)
      this.#send(this.#waiting.shift()!)
    }
  }

  /**
   * A dispatched batch settled: its slot is free (call `dispatch` to reuse
   * it) — or, `hold` (the WAL holds it), kept until `release` passes its
   * sequence number.
   */
  settle(entry: E, hold = false): void {
    this.#unsettled.delete(entry.id)
    if (hold && entry.walSeq !== undefined) this.#held.push(entry.walSeq)
    else this.#inFlight--
  }

  /**
   * Frees the slots of settled batches whose first item is below `ackedSeq`
   * (the acknowledgement covering them is written: a batch's items end
   * where the next batch's begin, and the watermark never stops inside a
   * batch). Returns how many were freed (call `dispatch` to reuse them).
   */
  release(ackedSeq: number): number {
    const held = this.#held
    let freed = 0
    for (let i = 0; i < held.length; i++) {
      if (held[i]! < ackedSeq) {
        held[i--] = held.at(-1)!
        held.pop()
        freed++
      }
    }
    this.#inFlight -= freed
    return freed
  }

  /** Held slots of batches logged after `entry` (0 when it is not in the log). */
  #heldAfter(entry: E): number {
    const seq = entry.walSeq
    if (seq === undefined || this.#held.length === 0) return 0
    let n = 0
    for (const held of this.#held) if (held > seq) n++
    return n
  }

  /** Settled batches whose slot waits for their acknowledgement to be written. */
  get held(): number {
    return this.#held.length
  }

  /**
   * Removes waiting (never dispatched) batches that `pick` chooses, oldest
   * first, each once `take` accepts it; stops at the first `take` that
   * refuses. Returns false if one refused.
   */
  takeWaiting(pick: (entry: E) => boolean, take: (entry: E) => boolean): boolean {
    for (let i = 0; i < this.#waiting.length; i++) {
      const entry = this.#waiting[i]!
      if (!pick(entry)) continue
      if (!take(entry)) return false
      this.#waiting.splice(i--, 1)
      this.#unsettled.delete(entry.id)
    }
    return true
  }

  /** Whether every waiting batch passes `test`. */
  everyWaiting(test: (entry: E) => boolean): boolean {
    return this.#waiting.every(test)
  }

  /** Sequence number of the oldest item the WAL must keep (undefined: none unsettled is in the WAL). */
  lowestWalSeq(): number | undefined {
    let low: number | undefined
    for (const entry of this.#unsettled.values()) {
      const seq = entry.walSeq
      if (seq !== undefined && (low === undefined || seq < low)) low = seq
    }
    return low
  }

  /** Whether a batch with id ≤ `id` is unsettled. */
  hasUnsettledUpTo(id: number): boolean {
    for (const unsettled of this.#unsettled.keys()) if (unsettled <= id) return true
    return false
  }

  /** Whether a batch is failing (waiting for or in a retry). */
  anyRetrying(): boolean {
    for (const entry of this.#unsettled.values()) if (entry.retrying) return true
    return false
  }
}

import type { ProducerLimits } from './handle.ts'

/**
 * Pacing of one producer's async enqueues past its lane's soft limit. Not
 * thread-safe: one per Producer, on the producer's thread. Works from what the
 * lane's shared header says (the consumer's READ position) and the clock, so
 * it needs nothing from the pipeline thread.
 *
 * - The drain rate is measured here: bytes the pipeline released from the
 *   lane (READ moving, minus what this producer evicted itself under
 *   dropOldest), over a sliding window of about a second. Bytes rather than
 *   items, so that a call is charged what it takes from the lane.
 * - Past the soft limit each call gets a slot on a schedule at that rate
 *   (a virtual clock, `#due`: GCRA, i.e. a token bucket). A call sleeps only
 *   once the schedule is a millisecond or more ahead of real time, so many
 *   calls go through without a sleep and the producer's rate follows the
 *   drain rate. The rate is scaled from 1× at the soft limit down to ½× at the
 *   hard limit: deeper in, the producer runs slower than the lane drains, so
 *   the fill comes back toward the soft limit instead of settling above it.
 * - Until the window holds MIN_WINDOW_MS of history (a new producer, or one
 *   back from a pause longer than the window), a call between the limits
 *   waits for that history, once, instead of going through unpaced.
 * - A lane that does not drain (stalled target) cannot be paced: the call is
 *   not held, the lane fills to the hard limit and `fullPolicy` decides there.
 *   Same when a call's slot is more than `maxBackoffMs` away (the rate is too
 *   low to be worth following) and once the producer has been held back for
 *   `maxBlockMs`.
 * - The held-back clock bounds the total: it starts at the first async call
 *   that finds the lane past the soft limit and stops at the first that finds
 *   it back under. It restarts when the lane has drained the soft-to-hard span
 *   of its capacity since it started: a target that drains that much in
 *   `maxBlockMs` is slow, not stalled. A trickle does not reset it.
 */
export class Pacer {
  readonly #soft: number
  readonly #span: number
  readonly #maxBackoffMs: number
  readonly #capacity: number
  /** Bytes the lane must drain while held back for the clock to restart. */
  readonly #progressBytes: number
  /** Consumer position last seen (byte position modulo 2^32). */
  #read: number
  /** Bytes this producer had evicted when READ was last seen. */
  #evicted = 0
  /** Bytes the consumer took from the lane since this pacer was made. */
  #drained = 0
  /** Samples of (time, #drained): a ring, oldest at #head. */
  readonly #t: Float64Array = new Float64Array(SAMPLES)
  readonly #d: Float64Array = new Float64Array(SAMPLES)
  #head = 0
  #count = 0
  /** The schedule: the time the next paced call may go. */
  #due = 0
  /** When this producer was first held back (NaN: it is not). */
  #heldSince = Number.NaN
  /** #drained when the held-back clock (re)started. */
  #heldDrained = 0
  /** Calls that pacing made sleep. */
  paced = 0
  /** Time pacing allots one call now, µs (what `backoffMs` reports). */
  backoffUs = 0

  constructor(
    limits: Pick<ProducerLimits, 'softLimit' | 'hardLimit' | 'maxBackoffMs'>,
    capacity: number,
    read: number,
  ) {
    this.#soft = limits.softLimit
    this.#span = Math.max(0, limits.hardLimit - limits.softLimit)
    this.#maxBackoffMs = limits.maxBackoffMs
    this.#capacity = capacity
    // At least 1/16 of the lane: with softLimit = hardLimit any drain at all would restart the clock.
    this.#progressBytes = Math.max(this.#span, 1 / 16) * capacity
    this.#read = read >>> 0
  }

  /** Records the consumer's position and the bytes this producer evicted so far. */
  observe(now: number, read: number, evicted: number): void {
    const moved = ((read >>> 0) - this.#read) >>> 0
    this.#drained += Math.max(0, moved - (evicted - this.#evicted))
    this.#read = read >>> 0
    this.#evicted = evicted
    if (this.#count > 0) {
      const newest = this.#t[(this.#head + this.#count - 1) % SAMPLES]!
      // After a pause longer than the window the old samples describe another time.
      if (now - newest > WINDOW_MS) this.#count = 0
      else if (now - newest < SAMPLE_EVERY_MS) return
    }
    const at = (this.#head + this.#count) % SAMPLES
    this.#t[at] = now
    this.#d[at] = this.#drained
    if (this.#count < SAMPLES) this.#count++
    else this.#head = (this.#head + 1) % SAMPLES
  }

  /**
   * Bytes per ms the lane drained over the window ending now; 0 when nothing
   * drained in it (stalled); NaN while there is too little history to say.
   */
  drainRate(now: number): number {
    if (this.#count === 0) return Number.NaN
    const since = now - this.#t[this.#head]!
    if (since < MIN_WINDOW_MS) return Number.NaN
    return (this.#drained - this.#d[this.#head]!) / since
  }

  /** Starts the held-back clock, or restarts it when the lane made progress. */
  hold(now: number): void {
    if (Number.isNaN(this.#heldSince) || this.#drained - this.#heldDrained >= this.#progressBytes) {
      this.#heldSince = now
      this.#heldDrained = this.#drained
    }
  }

  /** ms this producer has been held back (0 when it is not). */
  heldMs(now: number): number {
    return Number.isNaN(this.#heldSince) ? 0 : now - this.#heldSince
  }

  /**
   * Decides for one async call of `bytes` lane bytes at `fill` (0–1): returns
   * the ms to sleep (0: go now, unpaced or within the schedule), or UNPACED
   * when the call must not be paced (stalled lane, slot too far, held back
   * for `maxBlockMs`): it goes straight to the lane, and at the hard limit
   * `fullPolicy` applies.
   */
  admit(now: number, fill: number, bytes: number, maxBlockMs: number): number {
    if (fill <= this.#soft) {
      this.#heldSince = Number.NaN
      this.#due = now
      this.backoffUs = 0
      return 0
    }
    this.hold(now)
    // Not paced: the call is not slowed here (a wait at the hard limit reports its own backoff).
    this.backoffUs = 0
    if (this.#maxBackoffMs === 0 || now - this.#heldSince >= maxBlockMs) return UNPACED
    const rate = this.drainRate(now)
    if (Number.isNaN(rate)) {
      // Too little history (a new producer, or one back from a pause): wait
      // until there is enough to know the rate, rather than let the lane
      // fill to the hard limit (a drop policy would drop) for want of it. At
      // the hard limit already (this record would not fit), the policy
      // applies without this wait.
      const wait = this.#t[this.#head]! + MIN_WINDOW_MS - now
      const atHardLimit = fill + bytes / this.#capacity > this.#soft + this.#span
      if (atHardLimit || wait < MIN_SLEEP_MS || wait > this.#maxBackoffMs) return UNPACED
      this.backoffUs = Math.round(wait * 1000)
      this.paced++
      return wait
    }
    if (!(rate > 0)) return UNPACED
    const depth = this.#span > 0 ? Math.min(1, (fill - this.#soft) / this.#span) : 1
    const interval = bytes / (rate * (1 - 0.5 * depth))
    // SLACK_MS of credit absorbs timers firing late: the schedule is not lost to them.
    const start = Math.max(this.#due, now - SLACK_MS)
    const wait = start - now
    if (wait > this.#maxBackoffMs || interval > this.#maxBackoffMs) return UNPACED
    this.#due = start + interval
    this.backoffUs = Math.round(interval * 1000)
    if (wait < MIN_SLEEP_MS) return 0
    this.paced++
    return wait
  }
}

/** `admit`: the call is not paced. */
export const UNPACED = -1

/** Drain samples are taken at most this often (ms)… */
const SAMPLE_EVERY_MS = 25
/** …and this many kept: a window of about a second. */
const SAMPLES = 40
const WINDOW_MS = SAMPLE_EVERY_MS * SAMPLES
/** A rate is only trusted over at least this much history (ms). */
const MIN_WINDOW_MS = 50
/** Sleeps shorter than a timer's resolution are not taken: the debt is carried in the schedule. */
const MIN_SLEEP_MS = 1
const SLACK_MS = 2

/**
 * A circuit breaker for the queue's sender, kept by the
 * pipeline thread, which sees every send and its outcome.
 *
 *   closed ──(failure rate ≥ threshold over the rolling window,
 *             at least minimumRequests outcomes)──▶ open
 *   open ──(resetTimeoutMs)──▶ half-open: up to halfOpenProbes batches go out
 *   half-open ──(every probe succeeded)──▶ closed
 *   half-open ──(a probe failed)──▶ open (the timeout starts again)
 *
 * While open nothing is sent: batches wait (in memory, or in the WAL) and
 * retry timers that fire park their batch instead of sending it.
 * A failure is an outcome that says the target is unwell: a retryable error,
 * a timeout or a crashed sender thread. A permanent rejection (e.g. HTTP 400)
 * says the data is bad, not the target, and counts as a success here.
 */

export type CircuitStateName = 'closed' | 'open' | 'half-open'

/** Values of ControlSlot.CIRCUIT (metrics-reader.ts maps them back to names). */
export const CircuitCode = { closed: 0, open: 1, 'half-open': 2 } as const

export interface CircuitBreakerConfig {
  /** Failure ratio (0–1] over the window that opens the circuit. */
  readonly failureRateThreshold: number
  /** Outcomes the window must hold before the ratio counts. */
  readonly minimumRequests: number
  /** Length of the rolling window (ms). */
  readonly windowMs: number
  /** Time open before probing (ms). */
  readonly resetTimeoutMs: number
  /** Batches sent as probes while half-open; all must succeed to close. */
  readonly halfOpenProbes: number
}

const BUCKETS = 10

export class CircuitBreaker {
  readonly #config: CircuitBreakerConfig
  readonly #now: () => number
  readonly #onChange: (state: CircuitStateName) => void
  readonly #ok = new Array<number>(BUCKETS).fill(0)
  readonly #failed = new Array<number>(BUCKETS).fill(0)
  /** Index (time / bucket length) of the newest bucket. */
  #bucketAt = 0
  #state: CircuitStateName = 'closed'
  #openedAt = 0
  #probesSent = 0
  #probesOk = 0

  constructor(
    config: CircuitBreakerConfig,
    onChange: (state: CircuitStateName) => void,
    now: () => number = () => performance.now(),
  ) {
    this.#config = config
    this.#onChange = onChange
    this.#now = now
  }

  get state(): CircuitStateName {
    this.#tick()
    return this.#state
  }

  /** Milliseconds until an open circuit half-opens (0 when it is not open). */
  msUntilHalfOpen(): number {
    if (this.#state !== 'open') return 0
    return Math.max(0, this.#openedAt + this.#config.resetTimeoutMs - this.#now())
  }

  /** Half-open with every probe out: only a probe's outcome changes anything now. */
  get awaitingProbes(): boolean {
    this.#tick()
    return this.#state === 'half-open' && this.#probesSent >= this.#config.halfOpenProbes
  }

  /**
   * Whether a batch may be sent now. Returns 'probe' for a half-open probe
   * (its outcome decides the state), true for an ordinary send, false when
   * it must wait.
   */
  acquire(): boolean | 'probe' {
    this.#tick()
    if (this.#state === 'closed') return true
    if (this.#state === 'open') return false
    if (this.#probesSent >= this.#config.halfOpenProbes) return false
    this.#probesSent++
    return 'probe'
  }

  /** Records an outcome; `probe` is what `acquire` returned for that send. */
  record(failure: boolean, probe: boolean): void {
    this.#tick()
    if (this.#state === 'half-open') {
      if (!probe) return // sent before the circuit opened: says nothing about now
      if (failure) return this.#open()
      if (++this.#probesOk >= this.#config.halfOpenProbes) this.#close()
      return
    }
    if (this.#state === 'open') return
    const b = this.#bucketAt % BUCKETS
    if (failure) this.#failed[b]!++
    else this.#ok[b]!++
    if (!failure) return
    let ok = 0
    let failed = 0
    for (let i = 0; i < BUCKETS; i++) {
      ok += this.#ok[i]!
      failed += this.#failed[i]!
    }
    const total = ok + failed
    if (total >= this.#config.minimumRequests && failed / total >= this.#config.failureRateThreshold)
      this.#open()
  }

  /**
   * Opens the circuit now, whatever the window says: a failure that will
   * not pass by itself (the target cannot be reached as configured).
   */
  trip(): void {
    this.#tick()
    if (this.#state !== 'open') this.#open()
  }

  /** Ages the window and half-opens an open circuit whose timeout passed. */
  #tick(): void {
    const now = this.#now()
    const at = Math.floor(now / (this.#config.windowMs / BUCKETS))
    if (at !== this.#bucketAt) {
      for (let i = this.#bucketAt + 1; i <= at && i <= this.#bucketAt + BUCKETS; i++) {
        this.#ok[i % BUCKETS] = 0
        this.#failed[i % BUCKETS] = 0
      }
      this.#bucketAt = at
    }
    if (this.#state === 'open' && now >= this.#openedAt + this.#config.resetTimeoutMs) {
      this.#state = 'half-open'
      this.#probesSent = 0
      this.#probesOk = 0
      this.#onChange('half-open')
    }
  }

  #open(): void {
    this.#state = 'open'
    this.#openedAt = this.#now()
    this.#onChange('open')
  }

  #close(): void {
    this.#state = 'closed'
    this.#ok.fill(0)
    this.#failed.fill(0)
    this.#onChange('closed')
  }
}

/**
 * Adaptive request concurrency (AIMD, after Vector's ARC and TCP congestion
 * control): how many batches may be sent at once, between 1 and
 * `maxInFlightBatches`, found from the target's answers instead of guessed.
 *
 * Time is cut into periods one past-RTT long. At the end of a period:
 * - back pressure seen (a whole batch failed retryably: 429, 503, 5xx,
 *   timeouts, resets; or items failed with 429/503), or the period's mean
 *   RTT above the past mean + `rttDeviationScale` × its deviation →
 *   limit × `decreaseRatio` (multiplicative decrease, never below 1);
 * - else, if the limit was reached during the period (there was demand for
 *   more) and the period's mean RTT is at or below the past mean →
 *   limit + 1 (additive increase, never above the maximum).
 * The past RTT is an exponentially weighted mean and variance (`ewmaAlpha`)
 * of the periods' means, from fully successful sends only.
 *
 * No timers: it moves only on outcomes, so an idle queue keeps its limit.
 */
export interface AdaptiveConcurrencySettings {
  readonly initialConcurrency: number
  readonly decreaseRatio: number
  readonly ewmaAlpha: number
  readonly rttDeviationScale: number
}

export class AdaptiveConcurrency {
  readonly max: number
  readonly #settings: AdaptiveConcurrencySettings
  readonly #now: () => number
  /** Current limit on batches in flight. */
  limit: number
  #pastMean: number | undefined
  #pastVariance = 0
  #periodEnd = 0
  #rttSum = 0
  #rttCount = 0
  #backPressure = false
  #reachedLimit = false

  constructor(
    settings: AdaptiveConcurrencySettings,
    max: number,
    now: () => number = () => performance.now(),
  ) {
    this.#settings = settings
    this.max = max
    this.#now = now
    this.limit = Math.min(max, Math.max(1, settings.initialConcurrency))
  }

  /** A batch went out and `inFlight` are now out: records that the limit was reached. */
  started(inFlight: number): void {
    if (inFlight >= this.limit) this.#reachedLimit = true
  }

  /**
   * A send settled after `rttMs`: `backPressure` when the target pushed back,
   * `success` when the whole batch was delivered (only those RTTs are used).
   * Returns true when the limit changed.
   */
  settled(rttMs: number, success: boolean, backPressure: boolean): boolean {
    const now = this.#now()
    if (backPressure) this.#backPressure = true
    if (success) {
      this.#rttSum += rttMs
      this.#rttCount++
    }
    const current = this.#rttCount > 0 ? this.#rttSum / this.#rttCount : undefined
    if (this.#pastMean === undefined) {
      // The first measurement sets the baseline and the first period's length.
      if (current !== undefined) {
        this.#pastMean = current
        this.#periodEnd = now + current
        this.#resetPeriod()
      } else if (this.#backPressure && this.limit > 1) return this.#decrease()
      return false
    }
    if (now < this.#periodEnd) return false
    const before = this.limit
    const threshold = Math.sqrt(this.#pastVariance) * this.#settings.rttDeviationScale
    if (
      this.limit < this.max &&
      this.#reachedLimit &&
      !this.#backPressure &&
      current !== undefined &&
      current <= this.#pastMean
    ) {
      this.limit++
    } else if (this.limit > 1 && (this.#backPressure || (current ?? 0) > this.#pastMean + threshold)) {
      this.#decrease()
    }
    if (current !== undefined) this.#updatePast(current)
    this.#periodEnd = now + this.#pastMean
    this.#resetPeriod()
    return this.limit !== before
  }

  #decrease(): boolean {
    this.limit = Math.max(1, Math.floor(this.limit * this.#settings.decreaseRatio))
    return true
  }

  #updatePast(sample: number): void {
    const mean = this.#pastMean!
    const diff = sample - mean
    const increment = this.#settings.ewmaAlpha * diff
    this.#pastMean = mean + increment
    this.#pastVariance = (1 - this.#settings.ewmaAlpha) * (this.#pastVariance + diff * increment)
  }

  #resetPeriod(): void {
    this.#rttSum = 0
    this.#rttCount = 0
    this.#backPressure = false
    this.#reachedLimit = false
  }
}

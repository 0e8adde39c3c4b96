/**
 * Adaptive batch size (the Go VineQueue's 100–5000 following send latency): after
 * every `window` settled batches it compares the median send latency with the
 * target: well under it (< 0.5×) → grow by 25%; over it → shrink by 25%;
 * otherwise hold. Multiplicative steps reach either bound in a few windows.
 */
export class AdaptiveBatchSize {
  readonly min: number
  readonly max: number
  readonly targetLatencyMs: number
  readonly #window: number
  #samples: number[] = []
  size: number

  constructor(
    options: { minBatchSize: number; maxBatchSize: number; targetLatencyMs: number },
    initial: number,
    window = 8,
  ) {
    this.min = options.minBatchSize
    this.max = options.maxBatchSize
    this.targetLatencyMs = options.targetLatencyMs
    this.#window = window
    this.size = Math.min(this.max, Math.max(this.min, initial))
  }

  /** Records one batch's send latency; returns the (possibly new) size. */
  record(latencyMs: number): number {
    this.#samples.push(latencyMs)
    if (this.#samples.length < this.#window) return this.size
    const sorted = this.#samples.sort((a, b) => a - b)
    const median = sorted[sorted.length >> 1]!
    this.#samples = []
    if (median > this.targetLatencyMs) this.size = Math.max(this.min, Math.floor(this.size * 0.75))
    else if (median < this.targetLatencyMs * 0.5) this.size = Math.min(this.max, Math.ceil(this.size * 1.25))
    return this.size
  }
}

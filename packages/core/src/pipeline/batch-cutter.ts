/** Why a batch was cut. */
export type CutReason = 'count' | 'bytes' | 'linger' | 'flush' | 'stop'

/**
 * The batching rule, apart from threads so it can be tested with fake
 * timers: a batch is cut when it holds `maxBatchSize` items, when the next
 * record would not fit `maxBatchBytes`, or `flushIntervalMs` after its first
 * item arrived. (flush() and stop() cut whatever is open.)
 */
export class BatchCutter {
  readonly maxBatchBytes: number
  readonly flushIntervalMs: number
  /** Current count limit (the adaptive controller moves it). */
  maxBatchSize: number
  readonly #now: () => number

  constructor(
    options: { maxBatchSize: number; maxBatchBytes: number; flushIntervalMs: number },
    now: () => number = () => performance.now(),
  ) {
    this.maxBatchSize = options.maxBatchSize
    this.maxBatchBytes = options.maxBatchBytes
    this.flushIntervalMs = options.flushIntervalMs
    this.#now = now
  }

  /**
   * Items and bytes that may still be added to a batch holding `count` items
   * / `bytes` bytes. (An empty batch still takes one item larger than
   * `maxBatchBytes`, up to `maxItemBytes`, as Kafka's batch.size does: the
   * pipeline drains with `takeFirst` then.)
   */
  room(count: number, bytes: number): { items: number; bytes: number } {
    return {
      items: Math.max(0, this.maxBatchSize - count),
      bytes: Math.max(0, this.maxBatchBytes - bytes),
    }
  }

  /**
   * The reason to cut a batch now, or undefined. `blocked` says the next
   * record did not fit in the remaining bytes.
   */
  check(count: number, openedAt: number, blocked: boolean): CutReason | undefined {
    if (count === 0) return undefined
    if (count >= this.maxBatchSize) return 'count'
    if (blocked) return 'bytes'
    if (this.#now() - openedAt >= this.flushIntervalMs) return 'linger'
    return undefined
  }

  /** Milliseconds until an open batch lingers out (Infinity when none is open). */
  msUntilLinger(count: number, openedAt: number): number {
    if (count === 0) return Number.POSITIVE_INFINITY
    return Math.max(0, openedAt + this.flushIntervalMs - this.#now())
  }
}

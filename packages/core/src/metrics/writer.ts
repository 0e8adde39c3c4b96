import {
  bucketOf,
  FSYNC_HISTOGRAM_OFFSET,
  HISTOGRAM_BUCKETS,
  HISTOGRAM_OFFSET,
  MetricSlot,
} from './layout.ts'

type Slot = (typeof MetricSlot)[keyof typeof MetricSlot]

/**
 * The single writer of the queue-wide counters (lives on the pipeline thread).
 * Keeps plain numbers and stores them; readers never see a torn value.
 */
export class MetricsWriter {
  readonly #u64: BigUint64Array
  readonly #values: number[] = new Array(HISTOGRAM_OFFSET).fill(0)
  readonly #hist: number[] = new Array(HISTOGRAM_BUCKETS).fill(0)
  readonly #fsyncHist: number[] = new Array(HISTOGRAM_BUCKETS).fill(0)

  constructor(sab: SharedArrayBuffer) {
    this.#u64 = new BigUint64Array(sab)
  }

  add(slot: Slot, n: number): void {
    const v = (this.#values[slot]! += n)
    Atomics.store(this.#u64, slot, BigInt(v))
  }

  get(slot: Slot): number {
    return this.#values[slot]!
  }

  set(slot: Slot, v: number): void {
    this.#values[slot] = v
    Atomics.store(this.#u64, slot, BigInt(Math.max(0, Math.round(v))))
  }

  recordLatency(ms: number): void {
    const us = Math.round(ms * 1000)
    this.add(MetricSlot.LATENCY_SUM_US, us)
    this.add(MetricSlot.LATENCY_COUNT, 1)
    const b = bucketOf(us)
    Atomics.store(this.#u64, HISTOGRAM_OFFSET + b, BigInt(++this.#hist[b]!))
  }

  recordFsync(ms: number): void {
    const us = Math.round(ms * 1000)
    this.add(MetricSlot.FSYNC_SUM_US, us)
    this.add(MetricSlot.FSYNCS, 1)
    const b = bucketOf(us)
    Atomics.store(this.#u64, FSYNC_HISTOGRAM_OFFSET + b, BigInt(++this.#fsyncHist[b]!))
  }
}

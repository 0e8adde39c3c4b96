import type { FullPolicy } from '../queue/types.ts'

/**
 * Everything a thread needs to enqueue into a queue: structured-cloneable, so
 * it can be posted to a worker (the SharedArrayBuffers are shared, not copied).
 * Obtain one with `queue.producerPort()`; use it with `connectProducer()`.
 */
export interface ProducerHandle {
  readonly __vinequeueProducer: 1
  /** This producer's lane. */
  readonly lane: SharedArrayBuffer
  /** The queue's control block (state, doorbell). */
  readonly control: SharedArrayBuffer
  readonly limits: ProducerLimits
}

export interface ProducerLimits {
  readonly maxItemBytes: number
  readonly softLimit: number
  readonly hardLimit: number
  /** ('spill' is applied by the pipeline; at the ring it acts as 'block'.) */
  readonly fullPolicy: Exclude<FullPolicy, 'spill'>
  readonly maxBlockMs: number
  readonly maxBackoffMs: number
  /** enqueueBatch packs at most this many items per group record (the batch size limit). */
  readonly maxGroupItems: number
  /** …and at most this many payload bytes (min of maxItemBytes and maxBatchBytes). */
  readonly maxGroupBytes: number
  /** Refuse items that would not come back as the same data (the `strictItems` option). */
  readonly strictItems: boolean
}

/** Delay (ms) the soft limit imposes at a given fill ratio: linear from 0 at soft to max at hard. */
export function softLimitDelay(
  fill: number,
  limits: Pick<ProducerLimits, 'softLimit' | 'hardLimit' | 'maxBackoffMs'>,
): number {
  if (fill <= limits.softLimit || limits.maxBackoffMs === 0) return 0
  const span = Math.max(1e-9, limits.hardLimit - limits.softLimit)
  return Math.ceil(limits.maxBackoffMs * Math.min(1, (fill - limits.softLimit) / span))
}

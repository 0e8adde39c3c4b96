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
  /** Longest one producer is held back (paced or waiting) before it is told (ms). */
  readonly maxBlockMs: number
  /** Longest pacing delays one call; 0 turns pacing off (ms). */
  readonly maxBackoffMs: number
  /** enqueueBatch packs at most this many items per group record (the batch size limit). */
  readonly maxGroupItems: number
  /** …and at most this many payload bytes (min of maxItemBytes and maxBatchBytes). */
  readonly maxGroupBytes: number
  /** Refuse items that would not come back as the same data (the `strictItems` option). */
  readonly strictItems: boolean
}

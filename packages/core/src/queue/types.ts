import type { Batch } from '../batch/batch-format.ts'
import type { SendContext, SendResult } from '../sender/types.ts'

/** What happens when a lane reaches its hard limit. */
export type FullPolicy = 'block' | 'reject' | 'dropNewest' | 'dropOldest'

/** Named option sets; the seed's DefaultConfig() is `default`, V4Config() is `highThroughput`. */
export type PresetName = 'default' | 'highThroughput' | 'lowLatency'

/** A sender module run in the sender pool. */
export interface SenderModuleSpec {
  /**
   * Package name (`'@acme/vq-sender'`, resolved from process.cwd()), absolute
   * path, or file URL (`import.meta.resolve('@acme/vq-sender')` is exact).
   */
  readonly module: string | URL
  /** Passed (structured-cloned) to the module's factory once per sender thread. */
  readonly options?: unknown
}

/** Adaptive batch size (seed: 100–5000 following send latency). */
export interface AdaptiveBatchingOptions {
  /** Smallest batch the controller shrinks to. Default 100 items. */
  readonly minBatchSize?: number
  /** Largest batch it grows to. Default 5000 items. */
  readonly maxBatchSize?: number
  /** Send latency (median of recent batches) it steers towards. Default 50 ms. */
  readonly targetLatencyMs?: number
}

export interface DeadLetter {
  /** The decoded items (raw items as Uint8Array). */
  readonly items: unknown[]
  /** Why they were given up on. */
  readonly reason: string
  /** Attempts made. */
  readonly attempts: number
}

export interface QueueOptions {
  /** Start from a named preset; explicit options override it. Default `'default'`. */
  readonly preset?: PresetName
  /** In-thread sender: called on the thread that created the queue with each batch. */
  readonly send?: (batch: Batch, context: SendContext) => SendResult | Promise<SendResult>
  /** Sender module run in the sender pool (exactly one of `send` / `sender`). */
  readonly sender?: SenderModuleSpec
  /** Items per batch. Default 1000. */
  readonly maxBatchSize?: number
  /** Bytes per batch, 4-byte framing per item included. Default 1 MiB. */
  readonly maxBatchBytes?: number
  /** A batch is sent at the latest this long after its first item arrived. Default 5000 ms. */
  readonly flushIntervalMs?: number
  /** Adaptive batch size; `true` for the defaults. Default off. */
  readonly adaptiveBatching?: boolean | AdaptiveBatchingOptions
  /** Ring capacity per producer lane, rounded up to a power of two. Default 8 MiB. */
  readonly ringBytes?: number
  /** Largest encoded item. Default 1 MiB. */
  readonly maxItemBytes?: number
  /** Fill ratio where async enqueues start to slow down. Default 0.8. */
  readonly softLimit?: number
  /** Fill ratio where `fullPolicy` applies. Default 0.95. */
  readonly hardLimit?: number
  /** Policy at the hard limit. Default `'block'` (async waits, sync throws QueueFullError). */
  readonly fullPolicy?: FullPolicy
  /** Longest an async enqueue waits for room before BackpressureError. Default 60000 ms. */
  readonly maxBlockMs?: number
  /** Largest delay the soft limit imposes on one async enqueue. Default 50 ms. */
  readonly maxBackoffMs?: number
  /** Sender threads (pool). Default max(1, availableParallelism() - 1). */
  readonly senderThreads?: number
  /** Concurrent sends per sender thread. Default 4. */
  readonly senderConcurrency?: number
  /** Batches sent or waiting to retry at once. Default senderThreads × senderConcurrency (min 2). */
  readonly maxInFlightBatches?: number
  /** A send not settled after this long is aborted and retried. Default 30000 ms. */
  readonly sendTimeoutMs?: number
  /** Attempts per batch before its items are dead-lettered. Default Infinity. */
  readonly maxAttempts?: number
  /** First retry delay (exponential, with jitter). Default 100 ms. */
  readonly retryInitialDelayMs?: number
  /** Retry delay cap. Default 30000 ms. */
  readonly retryMaxDelayMs?: number
  /** Called with items a sender rejected permanently or that ran out of attempts. */
  readonly onDeadLetter?: (deadLetter: DeadLetter) => void
  /** Write-ahead log (WAL-first): every batch is made durable before it is sent. Default off. */
  readonly wal?: WalQueueOptions
}

/**
 * The queue's write-ahead log. PARTIAL (issue 3): WAL-first with
 * `syncMode: 'always'` or `'none'`; spill mode, `'periodic'` and `walMaxBytes`
 * are not there yet.
 */
export interface WalQueueOptions {
  /** Directory of the log (created 0700). Only one queue may use it at a time. */
  readonly dir: string
  /**
   * `'always'` (default): a batch is fdatasync'ed (group commit: one fsync
   * per pipeline pass covers every batch cut in it) before it is sent, and
   * flush() resolves after that fsync. `'none'`: written, never fsync'ed by
   * the queue (survives a process crash, not a power cut).
   */
  readonly syncMode?: 'always' | 'none'
  /** Segment file size. Default 64 MiB. */
  readonly segmentBytes?: number
  /** snappy per frame when it shrinks it. Default false. */
  readonly compression?: boolean
  /** AES-256-GCM: `{ keyId, keys: { [id]: 32-byte key } }`. */
  readonly encryption?: { readonly keyId: number; readonly keys: Readonly<Record<number, Uint8Array>> }
}

/** Options after presets and defaults: every field set. */
export interface ResolvedOptions {
  readonly preset: PresetName
  readonly send: QueueOptions['send']
  readonly sender: { readonly module: string; readonly options: unknown } | undefined
  readonly maxBatchSize: number
  readonly maxBatchBytes: number
  readonly flushIntervalMs: number
  readonly adaptiveBatching: Required<AdaptiveBatchingOptions> | false
  readonly ringBytes: number
  readonly maxItemBytes: number
  readonly softLimit: number
  readonly hardLimit: number
  readonly fullPolicy: FullPolicy
  readonly maxBlockMs: number
  readonly maxBackoffMs: number
  readonly senderThreads: number
  readonly senderConcurrency: number
  readonly maxInFlightBatches: number
  readonly sendTimeoutMs: number
  readonly maxAttempts: number
  readonly retryInitialDelayMs: number
  readonly retryMaxDelayMs: number
  readonly onDeadLetter: QueueOptions['onDeadLetter']
  readonly wal: WalQueueOptions | undefined
}

export interface EnqueueAsyncOptions {
  /** Overrides the queue's `maxBlockMs` for this call. */
  readonly maxBlockMs?: number
  /** Gives up (rejecting with the signal's reason) when aborted. */
  readonly signal?: AbortSignal
}

export type CircuitState = 'closed' | 'open' | 'half-open'

/** A snapshot, read from shared memory without messaging any thread. */
export interface Metrics {
  enqueuedTotal: number
  sentTotal: number
  errorsTotal: number
  droppedTotal: number
  droppedByReason: { dropNewest: number; dropOldest: number }
  rejectedTotal: number
  deadLetteredTotal: number
  batchesSentTotal: number
  retriesTotal: number
  senderFailuresTotal: number
  timeoutsTotal: number
  /** Items accepted and not yet delivered, dropped or dead-lettered (ring + pipeline). */
  memoryQueueSize: number
  /** Bytes in use in the ring lanes. */
  memoryQueueBytes: number
  inFlightBatches: number
  /** Batches past their first attempt and not settled yet (the target is failing). */
  retryingBatches: number
  /** WAL: bytes in segment files (0 without a WAL). */
  walSize: number
  /** WAL: items written and not acknowledged yet. */
  walPendingItems: number
  /** WAL: items re-delivered from what the WAL held at start. */
  recoveredTotal: number
  /** WAL: group-commit fsyncs. */
  fsyncsTotal: number
  /** WAL: damaged regions skipped when it was opened (their items are lost, never garbled). */
  walCorruptRegions: number
  /** Mean send latency (ms). */
  avgSendLatency: number
  sendLatencyP50: number
  sendLatencyP90: number
  sendLatencyP99: number
  sendLatencyP999: number
  circuitState: CircuitState
  /** Delay the soft limit currently applies to async enqueues (ms). */
  backoffMs: number
  /** Current batch size target (adaptive or fixed). */
  batchSize: number
  lanes: number
}

export type HealthStatus = 'ok' | 'degraded' | 'down'

export interface Health {
  status: HealthStatus
  reasons: string[]
}

/** What `stop()` reports. */
export interface StopReport {
  /** Items delivered during this queue's life. */
  readonly delivered: number
  /** Items that could not be delivered before the timeout (or the pipeline died). */
  readonly undeliveredCount: number
  /** true when the timeout cut the stop short. */
  readonly timedOut: boolean
  /** The undelivered items, decoded (raw items as Uint8Array). */
  undelivered(): unknown[]
  /** The undelivered items as one framed batch (batch-format.ts), e.g. to persist. */
  readonly undeliveredBatch: Uint8Array
}

export interface QueueEvents {
  error: [error: Error]
  backpressure: [active: boolean]
  deadLetter: [deadLetter: DeadLetter]
  stateChange: [status: HealthStatus]
}

import type { Batch } from '../batch/batch-format.ts'
import type { SendContext, SendResult } from '../sender/types.ts'

/**
 * What happens when a lane reaches its hard limit. `'spill'` needs `wal`
 * (it is `wal.mode: 'spill'`); producers then wait as with `'block'` only if
 * the log cannot take batches either.
 */
export type FullPolicy = 'block' | 'reject' | 'dropNewest' | 'dropOldest' | 'spill'

/** Named option sets (see `preset`): `default`, `highThroughput`, `lowLatency`. */
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

/** Adaptive batch size: between a minimum and a maximum (e.g. 100–5000), following send latency. */
export interface AdaptiveBatchingOptions {
  /** Smallest batch the controller shrinks to. Default 100 items. */
  readonly minBatchSize?: number
  /** Largest batch it grows to. Default 5000 items. */
  readonly maxBatchSize?: number
  /** Send latency (median of recent batches) it steers towards. Default 50 ms. */
  readonly targetLatencyMs?: number
}

/**
 * Adaptive request concurrency (AIMD on send latency and back pressure, like
 * Vector's ARC): the number of batches in flight moves between 1 and
 * `maxInFlightBatches`.
 */
export interface AdaptiveConcurrencyOptions {
  /** Batches in flight at the start. Default 1. */
  readonly initialConcurrency?: number
  /** Factor the limit is multiplied by on back pressure, in (0, 1). Default 0.9. */
  readonly decreaseRatio?: number
  /** Weight of the latest period in the past RTT average, in (0, 1]. Default 0.4. */
  readonly ewmaAlpha?: number
  /** A period's RTT this many deviations above the past mean counts as back pressure. Default 2.5. */
  readonly rttDeviationScale?: number
}

export interface CircuitBreakerOptions {
  /** Failure ratio (0–1] over the window that opens the circuit. Default 0.5. */
  readonly failureRateThreshold?: number
  /** Outcomes the window must hold before the ratio counts. Default 10. */
  readonly minimumRequests?: number
  /** Rolling window (ms). Default 10000. */
  readonly windowMs?: number
  /** How long the circuit stays open before probing (ms). Default 5000. */
  readonly resetTimeoutMs?: number
  /** Batches sent as probes while half-open; all must succeed to close. Default 1. */
  readonly halfOpenProbes?: number
  /**
   * What enqueue does while the circuit is open: `'accept'` (default; items
   * wait in memory / the WAL for the target to recover) or `'reject'` (throw
   * CircuitOpenError).
   */
  readonly whileOpen?: 'accept' | 'reject'
}

export interface DeadLetter {
  /**
   * The decoded items (raw items as Uint8Array; an item that does not decode
   * as an UndecodableItem `{ raw, decodeError }`: its msgpack bytes and why).
   */
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
  /**
   * Adaptive request concurrency: batches in flight start at 1 and move with
   * the target's latency and back pressure, up to `maxInFlightBatches`;
   * `true` for the defaults. Default off (always up to `maxInFlightBatches`).
   */
  readonly adaptiveConcurrency?: boolean | AdaptiveConcurrencyOptions
  /** Ring capacity per producer lane, rounded up to a power of two. Default 8 MiB. */
  readonly ringBytes?: number
  /** Largest encoded item. Default 1 MiB. */
  readonly maxItemBytes?: number
  /**
   * Refuse (EncodeError, nothing enqueued) any item that would not come back
   * from the queue as the same data: functions, Maps, Sets, typed arrays
   * other than Uint8Array, class instances, `__proto__` keys… (the table in
   * the core README). Checked by a walk over each item before it is encoded
   * (enqueue, enqueueBatch, enqueueAsync, producer threads); `enqueueRaw` is
   * not checked. Default false: such values are converted as the table says.
   */
  readonly strictItems?: boolean
  /** Fill ratio where async enqueues start to be paced to the lane's drain rate. Default 0.8. */
  readonly softLimit?: number
  /** Fill ratio where `fullPolicy` applies. Default 0.95. */
  readonly hardLimit?: number
  /** Policy at the hard limit. Default `'block'` (async waits, sync throws QueueFullError). */
  readonly fullPolicy?: FullPolicy
  /**
   * Longest one producer is held back — its async enqueues paced past the
   * soft limit or waiting at the hard limit, in all, not per call — before
   * it is told: then pacing stops, the lane fills to the hard limit and
   * `fullPolicy` applies (`block`: BackpressureError). The clock starts at
   * the first async enqueue that finds the lane past the soft limit, stops at
   * one that finds it back under, and restarts whenever the lane drained
   * (hardLimit − softLimit) of its capacity meanwhile. Default 60000 ms.
   */
  readonly maxBlockMs?: number
  /**
   * Longest one async enqueue is paced (slept) past the soft limit. A call
   * whose slot at the lane's drain rate is further away than this is not
   * paced (the lane fills toward the hard limit); 0 turns pacing off.
   * Default 50 ms.
   */
  readonly maxBackoffMs?: number
  /** Sender threads (pool). Default max(1, availableParallelism() - 1). */
  readonly senderThreads?: number
  /** Concurrent sends per sender thread. Default 4. */
  readonly senderConcurrency?: number
  /**
   * Batches sent or waiting to retry at once — with a WAL, also delivered
   * batches whose acknowledgement is not yet written, so that a crash
   * re-delivers at most this many batches that were delivered. Default
   * senderThreads × senderConcurrency (min 2).
   */
  readonly maxInFlightBatches?: number
  /** A send not settled after this long is aborted and retried. Default 30000 ms. */
  readonly sendTimeoutMs?: number
  /**
   * Longest `start()` waits for the pipeline thread, the write-ahead log and
   * the sender module (its factory included) to be ready; then it rejects
   * with StartTimeoutError and shuts down what it started. Default 30000 ms.
   */
  readonly startTimeoutMs?: number
  /** Attempts per batch before its items are dead-lettered. Default Infinity. */
  readonly maxAttempts?: number
  /** First retry delay (exponential, with jitter). Default 100 ms. */
  readonly retryInitialDelayMs?: number
  /** Retry delay cap. Default 30000 ms. */
  readonly retryMaxDelayMs?: number
  /** A batch whose first attempt was longer ago than this is dead-lettered instead of retried (ms). Default Infinity. */
  readonly maxRetryAgeMs?: number
  /**
   * Circuit breaker on the sender (on by default; `false` turns it off).
   * While open, nothing reaches the target but half-open probes; batches
   * wait in memory (and spill to the WAL, if there is one).
   */
  readonly circuitBreaker?: boolean | CircuitBreakerOptions
  /**
   * Appends every dead letter as one NDJSON line
   * (`{"at","reason","attempts","item"}`; raw items as `{"raw":"<base64>"}`)
   * to this file, written (and, with a WAL in syncMode 'always', fdatasync'ed)
   * by the pipeline thread. Mode 0600. Default: none (onDeadLetter/events only).
   */
  readonly deadLetterFile?: string
  /** Called with items a sender rejected permanently or that ran out of attempts. */
  readonly onDeadLetter?: (deadLetter: DeadLetter) => void
  /** Write-ahead log (WAL-first): every batch is made durable before it is sent. Default off. */
  readonly wal?: WalQueueOptions
}

/** What happens when the write-ahead log reaches `wal.maxBytes`. */
export type WalFullPolicy = 'block' | 'reject' | 'dropNewest' | 'dropOldest'

/** The queue's write-ahead log (packages/core/README.md, "Durability"). */
export interface WalQueueOptions {
  /** Directory of the log (created 0700). Only one queue may use it at a time. */
  readonly dir: string
  /**
   * `'first'` (default): every batch is written to the log (and, with
   * syncMode 'always', fdatasync'ed) before it is sent, like Vector's disk
   * buffer: a crash loses nothing flush() confirmed. `'spill'`: memory first;
   * batches go to the log only when memory cannot take them (every send slot
   * busy and the ring filling, or a flush/stop waiting); a crash loses what
   * was only in memory.
   * `fullPolicy: 'spill'` is the same as `mode: 'spill'`.
   */
  readonly mode?: 'first' | 'spill'
  /**
   * `'always'` (default): group commit, one fdatasync per pipeline pass
   * covering every frame written in it; batches are sent, and flush()
   * resolves, only after it. `'periodic'`: fdatasync every `syncIntervalMs`;
   * batches are sent and flush() resolves once written (a power cut loses
   * at most the last interval). `'none'`: never fdatasync'ed by the queue
   * (survives a process crash, not a power cut).
   */
  readonly syncMode?: 'always' | 'periodic' | 'none'
  /** syncMode 'periodic': interval between fdatasyncs (ms). Default 1000. */
  readonly syncIntervalMs?: number
  /**
   * Largest size of the log's files (bytes). When a batch would not fit,
   * `fullPolicy` applies. Default 1 GiB.
   */
  readonly maxBytes?: number
  /**
   * At `maxBytes`: `'block'` (default) stops taking batches from the ring,
   * whose own `fullPolicy` then applies to producers; `'reject'` makes every
   * enqueue throw QueueFullError (enqueueAsync rejects) until there is room;
   * `'dropNewest'` drops the batches that do not fit; `'dropOldest'` drops the
   * oldest segment of undelivered items. Every drop is counted
   * (`droppedByReason.wal`).
   */
  readonly fullPolicy?: WalFullPolicy
  /** Segment file size. Default 64 MiB. */
  readonly segmentBytes?: number
  /** snappy per frame when it shrinks it. Default false. */
  readonly compression?: boolean
  /** AES-256-GCM: `{ keyId, keys: { [id]: 32-byte key } }`. */
  readonly encryption?: { readonly keyId: number; readonly keys: Readonly<Record<number, Uint8Array>> }
  /**
   * File-system layer for fault injection (tests): a module URL or path whose
   * default export implements @vinequeue/wal's `WalFs`, loaded by the
   * pipeline thread. Default: node:fs.
   */
  readonly fs?: string | URL
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
  readonly adaptiveConcurrency: Required<AdaptiveConcurrencyOptions> | false
  readonly ringBytes: number
  readonly maxItemBytes: number
  readonly strictItems: boolean
  readonly softLimit: number
  readonly hardLimit: number
  readonly fullPolicy: FullPolicy
  readonly maxBlockMs: number
  readonly maxBackoffMs: number
  readonly senderThreads: number
  readonly senderConcurrency: number
  readonly maxInFlightBatches: number
  readonly sendTimeoutMs: number
  readonly startTimeoutMs: number
  readonly maxAttempts: number
  readonly retryInitialDelayMs: number
  readonly retryMaxDelayMs: number
  readonly onDeadLetter: QueueOptions['onDeadLetter']
  readonly wal: ResolvedWalOptions | undefined
  readonly maxRetryAgeMs: number
  readonly circuitBreaker: Required<CircuitBreakerOptions> | false
  readonly deadLetterFile: string | undefined
}

/** `wal` with its defaults filled in. */
export type ResolvedWalOptions = WalQueueOptions &
  Required<
    Pick<WalQueueOptions, 'mode' | 'syncMode' | 'syncIntervalMs' | 'maxBytes' | 'fullPolicy' | 'segmentBytes'>
  >

export interface EnqueueAsyncOptions {
  /**
   * Overrides the queue's `maxBlockMs` for this call, measured on the same
   * clock: how long this producer has been held back, not this call alone.
   */
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
  /** Drops by policy: the ring's `dropNewest`/`dropOldest`, and `wal` at `wal.maxBytes`. */
  droppedByReason: { dropNewest: number; dropOldest: number; wal: number }
  rejectedTotal: number
  /** Async enqueues that pacing made sleep past the soft limit (most paced calls do not sleep). */
  pacedTotal: number
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
  /** WAL: damaged regions (and frames that failed decryption) skipped; their items are lost, never garbled. */
  walCorruptRegions: number
  /** WAL: items written to the log's backlog because memory could not take them. */
  walSpilledTotal: number
  /** WAL: items dropped at `wal.maxBytes` (wal.fullPolicy dropOldest / dropNewest). */
  walDroppedTotal: number
  /** WAL: the log is at `wal.maxBytes`. */
  walFull: boolean
  /** WAL: gaps in sequence numbers found since start (a missing segment, lost frames): their items are lost. */
  walGapsTotal: number
  /** WAL: pieces of damage copied (or moved) to `<wal.dir>/quarantine` since start. */
  walQuarantinedTotal: number
  /** WAL: re-delivery is stopped at a frame whose key is missing or probably wrong (health() is down). */
  walStalled: boolean
  /** WAL: items from before this start are still being re-delivered. */
  recovering: boolean
  /** WAL: fdatasync latency percentiles (ms). */
  walSyncLatencyP50: number
  walSyncLatencyP99: number
  walSyncLatencyP999: number
  /** Circuit breaker: times it opened, all its state changes, probe batches sent while half-open. */
  circuitOpensTotal: number
  circuitTransitionsTotal: number
  circuitProbesTotal: number
  /** Mean send latency (ms). */
  avgSendLatency: number
  sendLatencyP50: number
  sendLatencyP90: number
  sendLatencyP99: number
  sendLatencyP999: number
  circuitState: CircuitState
  /**
   * The pause backpressure currently imposes on async enqueues, the largest
   * over producers (ms): while paced, the time allotted to one call at the
   * lane's drain rate; `maxBackoffMs` while a call waits at the hard limit;
   * 0 under the soft limit and for producers that are not slowed.
   */
  backoffMs: number
  /** Current batch size target (adaptive or fixed). */
  batchSize: number
  /** Limit on batches in flight: adaptive concurrency's current limit, else maxInFlightBatches. */
  concurrencyLimit: number
  lanes: number
}

/**
 * One latency histogram as the pipeline thread records it: log-scale buckets,
 * four per doubling (bucket b holds samples in [2^(b/4), 2^((b+1)/4)) µs,
 * samples rounded to whole µs; the first bucket also holds 0). Read from
 * shared memory without messaging any thread.
 */
export interface LatencyHistogram {
  /** Exclusive upper bound (µs) of each bucket, ascending; the same frozen array every time. */
  readonly upperBoundsUs: readonly number[]
  /** Samples per bucket (not cumulative), in the order of `upperBoundsUs`. */
  readonly counts: readonly number[]
  /** Samples recorded: the sum of `counts`. */
  readonly count: number
  /** Sum of the samples (µs). */
  readonly sumUs: number
}

/** The queue's latency histograms (`queue.latencyHistograms()`). */
export interface LatencyHistograms {
  /** Send latency: from a batch's hand-off to a sender until its send settled (each attempt). */
  readonly send: LatencyHistogram
  /** WAL: fdatasync latency of each group commit (all zero without a WAL). */
  readonly walSync: LatencyHistogram
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
  /**
   * The undelivered items, decoded (raw items as Uint8Array; an item that
   * does not decode as an UndecodableItem `{ raw, decodeError }`). Never throws.
   */
  undelivered(): unknown[]
  /** The undelivered items as one framed batch (batch-format.ts), e.g. to persist. */
  readonly undeliveredBatch: Uint8Array
  /**
   * With a WAL: items it holds for the next start (re-delivered then). They
   * include the undelivered items above, and the backlog spilled to disk
   * that `undelivered()` does not load into memory.
   */
  readonly walPendingItems: number
}

export interface QueueEvents {
  error: [error: Error]
  backpressure: [active: boolean]
  deadLetter: [deadLetter: DeadLetter]
  stateChange: [status: HealthStatus]
  /** The circuit breaker changed state. */
  circuit: [state: CircuitState]
  /** WAL: everything it held at start was re-delivered (sent, or waiting for its send to settle). */
  recovered: [info: { items: number; ms: number }]
  /** WAL: it reached (true) or left (false) `wal.maxBytes`. */
  walFull: [full: boolean]
}

import type { CircuitState, LatencyHistogram, LatencyHistograms, Metrics } from '@vinequeue/core'

/** Label set of one sample, without the `queue` label and the constant labels. */
export type SampleLabels = Readonly<Record<string, string | number>>

/** What one scrape reads from a queue: one `metrics()` and one `latencyHistograms()`. */
export interface Snapshot {
  readonly metrics: Metrics
  readonly histograms: LatencyHistograms
}

interface FamilyBase {
  /** Name after the prefix. */
  readonly name: string
  readonly help: string
  /** Only for queues with a WAL (the values are zero without one). */
  readonly wal?: boolean
}

export interface ScalarFamily extends FamilyBase {
  readonly type: 'counter' | 'gauge'
  readonly samples: (m: Metrics) => ReadonlyArray<readonly [SampleLabels | undefined, number]>
}

export interface HistogramFamily extends FamilyBase {
  readonly type: 'histogram'
  readonly pick: (h: LatencyHistograms) => LatencyHistogram
}

export type Family = ScalarFamily | HistogramFamily

const one = (value: number): ReadonlyArray<readonly [undefined, number]> => [[undefined, value]]
const bool = (value: boolean): number => (value ? 1 : 0)
const CIRCUIT_STATES: readonly CircuitState[] = ['closed', 'open', 'half-open']

/**
 * Every family this package exports, named by Prometheus conventions: base
 * units (seconds, bytes), `_total` on counters, a label rather than a name per
 * variant (drop reason, circuit state). Each one reads what `queue.metrics()`
 * reports under the name given in its help text.
 */
export const FAMILIES: readonly Family[] = [
  {
    name: 'enqueued_items_total',
    help: 'Items accepted by enqueue calls on every producer (enqueuedTotal).',
    type: 'counter',
    samples: (m) => one(m.enqueuedTotal),
  },
  {
    name: 'sent_items_total',
    help: 'Items delivered: their send succeeded (sentTotal).',
    type: 'counter',
    samples: (m) => one(m.sentTotal),
  },
  {
    name: 'batches_sent_total',
    help: 'Batches whose send succeeded (batchesSentTotal).',
    type: 'counter',
    samples: (m) => one(m.batchesSentTotal),
  },
  {
    name: 'send_errors_total',
    help: 'Send attempts that failed, wholly or for some items (errorsTotal).',
    type: 'counter',
    samples: (m) => one(m.errorsTotal),
  },
  {
    name: 'retries_total',
    help: 'Batches scheduled for another attempt (retriesTotal).',
    type: 'counter',
    samples: (m) => one(m.retriesTotal),
  },
  {
    name: 'send_timeouts_total',
    help: 'Sends aborted after sendTimeoutMs (timeoutsTotal).',
    type: 'counter',
    samples: (m) => one(m.timeoutsTotal),
  },
  {
    name: 'sender_failures_total',
    help: 'Sender threads that crashed or were terminated (senderFailuresTotal).',
    type: 'counter',
    samples: (m) => one(m.senderFailuresTotal),
  },
  {
    name: 'dead_lettered_items_total',
    help: 'Items given up on and handed to the dead-letter path (deadLetteredTotal).',
    type: 'counter',
    samples: (m) => one(m.deadLetteredTotal),
  },
  {
    name: 'rejected_items_total',
    help: 'Items refused at enqueue (rejectedTotal).',
    type: 'counter',
    samples: (m) => one(m.rejectedTotal),
  },
  {
    name: 'paced_enqueues_total',
    help: 'Async enqueues that pacing past the soft limit made sleep (pacedTotal).',
    type: 'counter',
    samples: (m) => one(m.pacedTotal),
  },
  {
    name: 'dropped_items_total',
    help: 'Items dropped by policy, by reason: dropNewest, dropOldest, wal (droppedByReason).',
    type: 'counter',
    samples: (m) => [
      [{ reason: 'dropNewest' }, m.droppedByReason.dropNewest],
      [{ reason: 'dropOldest' }, m.droppedByReason.dropOldest],
      [{ reason: 'wal' }, m.droppedByReason.wal],
    ],
  },
  {
    name: 'circuit_opens_total',
    help: 'Times the circuit breaker opened (circuitOpensTotal).',
    type: 'counter',
    samples: (m) => one(m.circuitOpensTotal),
  },
  {
    name: 'circuit_transitions_total',
    help: 'State changes of the circuit breaker (circuitTransitionsTotal).',
    type: 'counter',
    samples: (m) => one(m.circuitTransitionsTotal),
  },
  {
    name: 'circuit_probes_total',
    help: 'Batches sent as probes while the circuit was half-open (circuitProbesTotal).',
    type: 'counter',
    samples: (m) => one(m.circuitProbesTotal),
  },
  {
    name: 'circuit_state',
    help: 'Circuit breaker state: 1 for the current state, 0 for the others (circuitState).',
    type: 'gauge',
    samples: (m) => CIRCUIT_STATES.map((state) => [{ state }, bool(m.circuitState === state)] as const),
  },
  {
    name: 'memory_queue_items',
    help: 'Items accepted and not yet delivered, dropped or dead-lettered, in the rings and the pipeline (memoryQueueSize).',
    type: 'gauge',
    samples: (m) => one(m.memoryQueueSize),
  },
  {
    name: 'memory_queue_bytes',
    help: 'Bytes in use in the ring lanes (memoryQueueBytes).',
    type: 'gauge',
    samples: (m) => one(m.memoryQueueBytes),
  },
  {
    name: 'in_flight_batches',
    help: 'Batches being sent or waiting to be retried (inFlightBatches).',
    type: 'gauge',
    samples: (m) => one(m.inFlightBatches),
  },
  {
    name: 'retrying_batches',
    help: 'Batches past their first attempt and not settled (retryingBatches).',
    type: 'gauge',
    samples: (m) => one(m.retryingBatches),
  },
  {
    name: 'concurrency_limit_batches',
    help: 'Limit on batches in flight: adaptive concurrency limit, else maxInFlightBatches (concurrencyLimit).',
    type: 'gauge',
    samples: (m) => one(m.concurrencyLimit),
  },
  {
    name: 'batch_size_items',
    help: 'Current batch size target, adaptive or fixed (batchSize).',
    type: 'gauge',
    samples: (m) => one(m.batchSize),
  },
  {
    name: 'backoff_seconds',
    help: 'Pause backpressure currently imposes on async enqueues, per call (backoffMs).',
    type: 'gauge',
    samples: (m) => one(m.backoffMs / 1000),
  },
  {
    name: 'producer_lanes',
    help: 'Producer lanes (this thread and connected producer threads) (lanes).',
    type: 'gauge',
    samples: (m) => one(m.lanes),
  },
  {
    name: 'send_duration_seconds',
    help: 'Send latency of each attempt, from hand-off to a sender until it settled.',
    type: 'histogram',
    pick: (h) => h.send,
  },
  {
    name: 'wal_size_bytes',
    help: 'Bytes in the write-ahead log segment files (walSize).',
    type: 'gauge',
    wal: true,
    samples: (m) => one(m.walSize),
  },
  {
    name: 'wal_pending_items',
    help: 'Items in the write-ahead log not acknowledged yet (walPendingItems).',
    type: 'gauge',
    wal: true,
    samples: (m) => one(m.walPendingItems),
  },
  {
    name: 'wal_full',
    help: '1 while the write-ahead log is at wal.maxBytes (walFull).',
    type: 'gauge',
    wal: true,
    samples: (m) => one(bool(m.walFull)),
  },
  {
    name: 'wal_recovering',
    help: '1 while items the log held at start are being re-delivered (recovering).',
    type: 'gauge',
    wal: true,
    samples: (m) => one(bool(m.recovering)),
  },
  {
    name: 'wal_recovered_items_total',
    help: 'Items re-delivered from what the write-ahead log held at start (recoveredTotal).',
    type: 'counter',
    wal: true,
    samples: (m) => one(m.recoveredTotal),
  },
  {
    name: 'wal_spilled_items_total',
    help: 'Items written to the log backlog because memory could not take them (walSpilledTotal).',
    type: 'counter',
    wal: true,
    samples: (m) => one(m.walSpilledTotal),
  },
  {
    name: 'wal_corrupt_regions_total',
    help: 'Damaged regions and undecryptable frames skipped in the write-ahead log (walCorruptRegions).',
    type: 'counter',
    wal: true,
    samples: (m) => one(m.walCorruptRegions),
  },
  {
    name: 'wal_gaps_total',
    help: 'Gaps in sequence numbers found in the write-ahead log: items lost to a missing segment (walGapsTotal).',
    type: 'counter',
    wal: true,
    samples: (m) => one(m.walGapsTotal),
  },
  {
    name: 'wal_quarantined_total',
    help: "Pieces of damage kept in the log directory's quarantine folder (walQuarantinedTotal).",
    type: 'counter',
    wal: true,
    samples: (m) => one(m.walQuarantinedTotal),
  },
  {
    name: 'wal_stalled',
    help: '1 while re-delivery is stopped at a frame whose key is missing or probably wrong (walStalled).',
    type: 'gauge',
    wal: true,
    samples: (m) => one(bool(m.walStalled)),
  },
  {
    name: 'wal_fsync_duration_seconds',
    help: 'fdatasync latency of each write-ahead log group commit (its count is fsyncsTotal).',
    type: 'histogram',
    wal: true,
    pick: (h) => h.walSync,
  },
]

/**
 * Histogram bounds: one per doubling, 2 µs … 2^26 µs (≈ 67 s), then +Inf.
 * The queue's histogram has four buckets per doubling; each bound here is a
 * bucket edge of it, so every cumulative count is exact, not interpolated.
 */
export const BOUND_EXPONENTS: readonly number[] = Array.from({ length: 26 }, (_, i) => i + 1)

/**
 * The cumulative `le` counts of a queue histogram. The queue's bucket b holds
 * samples (whole µs) in [2^(b/4), 2^((b+1)/4)), so the samples below 2^k µs
 * are exactly buckets 0 … 4k − 1. Prometheus reads `le` as ≤: a sample of
 * exactly 2^k µs is counted under the next bound (a 1 µs edge).
 */
export function cumulativeBuckets(h: LatencyHistogram): Array<readonly [le: number | '+Inf', count: number]> {
  const out: Array<readonly [number | '+Inf', number]> = []
  let cumulative = 0
  let b = 0
  for (const k of BOUND_EXPONENTS) {
    for (; b < 4 * k && b < h.counts.length; b++) cumulative += h.counts[b]!
    out.push([2 ** k / 1e6, cumulative])
  }
  out.push(['+Inf', h.count])
  return out
}

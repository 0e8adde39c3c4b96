/**
 * Queue-wide counters in one SharedArrayBuffer of u64 slots. Each slot has
 * exactly one writing thread (the pipeline thread for everything here; each
 * producer's own counters live in its lane, ring/layout.ts), which stores
 * with `Atomics.store` — no read-modify-write, no lock — and any thread reads
 * with `Atomics.load`. Counters the pipeline updates together (per batch) sit
 * together; the producer-written counters live elsewhere, so no false sharing
 * with the enqueue path.
 *
 *   slot 0..39   counters (MetricSlot)
 *   slot 40..    send-latency histogram, HISTOGRAM_BUCKETS buckets
 *   then         WAL fsync-latency histogram, HISTOGRAM_BUCKETS buckets
 *
 * Histogram bucket b counts latencies in [2^(b/4), 2^((b+1)/4)) microseconds:
 * four buckets per doubling, ≤ 19% relative error, 1 µs … 2^32 µs (≈ 71 min).
 */
export const MetricSlot = {
  SENT: 0,
  ERRORS: 1,
  BATCHES_SENT: 2,
  RETRIES: 3,
  DEAD_LETTERED: 4,
  LATENCY_SUM_US: 5,
  LATENCY_COUNT: 6,
  IN_FLIGHT_BATCHES: 7,
  /** Items the pipeline holds in batches (filling, in flight or waiting to retry). */
  PIPELINE_ITEMS: 8,
  SENDER_FAILURES: 9,
  TIMEOUTS: 10,
  /** Current adaptive batch size (or maxBatchSize). */
  BATCH_SIZE: 11,
  /** Unsettled batches past their first attempt (failing, being retried). */
  RETRYING_BATCHES: 12,
  /** WAL: bytes in segment files, items not acknowledged, items re-delivered after a restart, fsyncs. */
  WAL_SIZE: 13,
  WAL_PENDING: 14,
  RECOVERED: 15,
  FSYNCS: 16,
  /** WAL: damaged regions (and undecryptable frames) skipped. */
  WAL_CORRUPT: 17,
  /** WAL: items written to the log's backlog because memory could not take them (spill). */
  SPILLED: 18,
  /** WAL: items dropped because the log was at `wal.maxBytes` (dropOldest / dropNewest). */
  WAL_DROPPED: 19,
  /** WAL: 1 while items from before the start are being re-delivered. */
  RECOVERING: 20,
  /** WAL: fdatasync latency sum (µs) and count. */
  FSYNC_SUM_US: 21,
  /** Circuit breaker: transitions to open, and all transitions. */
  CIRCUIT_OPENS: 22,
  CIRCUIT_TRANSITIONS: 23,
  /** Circuit breaker: batches sent as half-open probes. */
  CIRCUIT_PROBES: 24,
  /** WAL: 1 while the log is at `wal.maxBytes`. */
  WAL_FULL: 25,
  /** Limit on batches in flight: adaptive concurrency's current limit, else maxInFlightBatches. */
  CONCURRENCY_LIMIT: 26,
  /** WAL: gaps in sequence numbers found (a missing segment, lost frames). */
  WAL_GAPS: 27,
  /** WAL: pieces of damage copied (or moved) to the log's quarantine folder. */
  WAL_QUARANTINED: 28,
  /** WAL: 1 while re-delivery is stopped at a frame whose key is missing or probably wrong. */
  WAL_STALLED: 29,
} as const

export const HISTOGRAM_OFFSET = 40
export const HISTOGRAM_BUCKETS = 128
/** Start of the fsync-latency histogram. */
export const FSYNC_HISTOGRAM_OFFSET: number = HISTOGRAM_OFFSET + HISTOGRAM_BUCKETS
export const METRICS_BYTES: number = (FSYNC_HISTOGRAM_OFFSET + HISTOGRAM_BUCKETS) * 8

export function createMetricsBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(METRICS_BYTES)
}

/** Histogram bucket of a latency in microseconds. */
export function bucketOf(us: number): number {
  if (us < 1) return 0
  const b = Math.floor(Math.log2(us) * 4)
  return b >= HISTOGRAM_BUCKETS ? HISTOGRAM_BUCKETS - 1 : b
}

/** Upper bound (µs) of a bucket: the value a percentile in it reports. */
export function bucketUpperUs(bucket: number): number {
  return 2 ** ((bucket + 1) / 4)
}

import {
  bucketUpperUs,
  FSYNC_HISTOGRAM_OFFSET,
  HISTOGRAM_BUCKETS,
  HISTOGRAM_OFFSET,
  MetricSlot,
} from '../metrics/layout.ts'
import { ControlSlot, LaneCounter, LaneSlot, laneCapacity } from '../ring/layout.ts'
import type { CircuitState, LatencyHistogram, LatencyHistograms, Metrics, ResolvedOptions } from './types.ts'

const CIRCUIT: readonly CircuitState[] = ['closed', 'open', 'half-open']

/** A lane's producer-side and consumer-side counters. */
export interface LaneCounters {
  enqueued: number
  consumed: number
  droppedNewest: number
  droppedOldest: number
  rejected: number
  paced: number
}

/**
 * If the lane's producer closed it and the pipeline emptied it, returns its
 * final counters (the lane can be forgotten); otherwise undefined.
 */
export function finishedLaneCounters(lane: SharedArrayBuffer): LaneCounters | undefined {
  const i32 = new Int32Array(lane, 0, 64)
  if (Atomics.load(i32, LaneSlot.CLOSED) !== 1) return undefined
  if (Atomics.load(i32, LaneSlot.WRITE) !== Atomics.load(i32, LaneSlot.READ)) return undefined
  return laneCounters(lane)
}

/** A lane's counters (each written by one thread, read here with Atomics.load). */
function laneCounters(lane: SharedArrayBuffer): LaneCounters {
  const u64 = new BigUint64Array(lane, 0, 64)
  return {
    enqueued: Number(Atomics.load(u64, LaneCounter.ENQUEUED)),
    consumed: Number(Atomics.load(u64, LaneCounter.CONSUMED)),
    droppedNewest: Number(Atomics.load(u64, LaneCounter.DROPPED_NEWEST)),
    droppedOldest: Number(Atomics.load(u64, LaneCounter.DROPPED_OLDEST)),
    rejected: Number(Atomics.load(u64, LaneCounter.REJECTED)),
    paced: Number(Atomics.load(u64, LaneCounter.PACED)),
  }
}

/**
 * Builds a metrics snapshot from shared memory alone: the queue-wide slots
 * (written by the pipeline thread) and each lane's counters (written by its
 * producer). No thread is messaged; values are at most one publish old.
 */
export function readMetrics(
  metricsSab: SharedArrayBuffer,
  control: SharedArrayBuffer,
  lanes: readonly SharedArrayBuffer[],
  options: Pick<ResolvedOptions, 'softLimit'>,
  retired: Readonly<LaneCounters>,
): Metrics {
  const g = new BigUint64Array(metricsSab)
  const slot = (i: number): number => Number(Atomics.load(g, i))
  let { enqueued, consumed, droppedNewest, droppedOldest, rejected, paced } = retired
  let bytes = 0
  let backoffUs = 0
  for (const lane of lanes) {
    const c = laneCounters(lane)
    enqueued += c.enqueued
    consumed += c.consumed
    droppedNewest += c.droppedNewest
    droppedOldest += c.droppedOldest
    rejected += c.rejected
    paced += c.paced
    const i32 = new Int32Array(lane, 0, 64)
    const used = (Atomics.load(i32, LaneSlot.WRITE) - Atomics.load(i32, LaneSlot.READ)) >>> 0
    bytes += used
    // The producer stores its pace when it enqueues; a lane back under the soft
    // limit is not slowed whatever its producer stored last (it may be idle).
    if (used > laneCapacity(lane) * options.softLimit)
      backoffUs = Math.max(backoffUs, Atomics.load(i32, LaneSlot.BACKOFF_US))
  }
  const latencyCount = slot(MetricSlot.LATENCY_COUNT)
  const histogram = (offset: number): number[] => {
    const h: number[] = []
    for (let b = 0; b < HISTOGRAM_BUCKETS; b++) h.push(Number(Atomics.load(g, offset + b)))
    return h
  }
  const sendHist = histogram(HISTOGRAM_OFFSET)
  const fsyncHist = histogram(FSYNC_HISTOGRAM_OFFSET)
  const pct = (p: number, hist: number[] = sendHist): number => {
    const total = hist.reduce((s, n) => s + n, 0)
    if (total === 0) return 0
    const rank = Math.ceil(total * p)
    let seen = 0
    for (let b = 0; b < HISTOGRAM_BUCKETS; b++) {
      seen += hist[b]!
      if (seen >= rank) return Math.round(bucketUpperUs(b)) / 1000
    }
    return 0
  }
  const pipelineItems = slot(MetricSlot.PIPELINE_ITEMS)
  return {
    enqueuedTotal: enqueued,
    sentTotal: slot(MetricSlot.SENT),
    errorsTotal: slot(MetricSlot.ERRORS),
    droppedTotal: droppedNewest + droppedOldest + slot(MetricSlot.WAL_DROPPED),
    droppedByReason: {
      dropNewest: droppedNewest,
      dropOldest: droppedOldest,
      wal: slot(MetricSlot.WAL_DROPPED),
    },
    rejectedTotal: rejected,
    pacedTotal: paced,
    deadLetteredTotal: slot(MetricSlot.DEAD_LETTERED),
    batchesSentTotal: slot(MetricSlot.BATCHES_SENT),
    retriesTotal: slot(MetricSlot.RETRIES),
    senderFailuresTotal: slot(MetricSlot.SENDER_FAILURES),
    timeoutsTotal: slot(MetricSlot.TIMEOUTS),
    memoryQueueSize: Math.max(0, enqueued - consumed - droppedOldest) + pipelineItems,
    memoryQueueBytes: bytes,
    inFlightBatches: slot(MetricSlot.IN_FLIGHT_BATCHES),
    retryingBatches: slot(MetricSlot.RETRYING_BATCHES),
    walSize: slot(MetricSlot.WAL_SIZE),
    walPendingItems: slot(MetricSlot.WAL_PENDING),
    recoveredTotal: slot(MetricSlot.RECOVERED),
    fsyncsTotal: slot(MetricSlot.FSYNCS),
    walCorruptRegions: slot(MetricSlot.WAL_CORRUPT),
    walSpilledTotal: slot(MetricSlot.SPILLED),
    walDroppedTotal: slot(MetricSlot.WAL_DROPPED),
    walFull: slot(MetricSlot.WAL_FULL) === 1,
    walGapsTotal: slot(MetricSlot.WAL_GAPS),
    walQuarantinedTotal: slot(MetricSlot.WAL_QUARANTINED),
    walStalled: slot(MetricSlot.WAL_STALLED) === 1,
    recovering: slot(MetricSlot.RECOVERING) === 1,
    walSyncLatencyP50: pct(0.5, fsyncHist),
    walSyncLatencyP99: pct(0.99, fsyncHist),
    walSyncLatencyP999: pct(0.999, fsyncHist),
    circuitOpensTotal: slot(MetricSlot.CIRCUIT_OPENS),
    circuitTransitionsTotal: slot(MetricSlot.CIRCUIT_TRANSITIONS),
    circuitProbesTotal: slot(MetricSlot.CIRCUIT_PROBES),
    avgSendLatency: latencyCount === 0 ? 0 : slot(MetricSlot.LATENCY_SUM_US) / latencyCount / 1000,
    sendLatencyP50: pct(0.5),
    sendLatencyP90: pct(0.9),
    sendLatencyP99: pct(0.99),
    sendLatencyP999: pct(0.999),
    circuitState: CIRCUIT[Atomics.load(new Int32Array(control), ControlSlot.CIRCUIT)] ?? 'closed',
    backoffMs: backoffUs / 1000,
    batchSize: slot(MetricSlot.BATCH_SIZE),
    concurrencyLimit: slot(MetricSlot.CONCURRENCY_LIMIT),
    lanes: lanes.length,
  }
}

const UPPER_BOUNDS_US: readonly number[] = Object.freeze(
  Array.from({ length: HISTOGRAM_BUCKETS }, (_, b) => bucketUpperUs(b)),
)

/**
 * The send-latency and fsync histograms as they are in shared memory. The
 * pipeline thread stores a bucket and then the sum (two stores, not one
 * transaction), so `count` is taken from the buckets themselves: it always
 * equals the sum of `counts`, and `sumUs` may lag by the sample in progress.
 */
export function readHistograms(metricsSab: SharedArrayBuffer): LatencyHistograms {
  const g = new BigUint64Array(metricsSab)
  const read = (offset: number, sumSlot: number): LatencyHistogram => {
    const counts: number[] = []
    let count = 0
    for (let b = 0; b < HISTOGRAM_BUCKETS; b++) {
      const n = Number(Atomics.load(g, offset + b))
      counts.push(n)
      count += n
    }
    return { upperBoundsUs: UPPER_BOUNDS_US, counts, count, sumUs: Number(Atomics.load(g, sumSlot)) }
  }
  return {
    send: read(HISTOGRAM_OFFSET, MetricSlot.LATENCY_SUM_US),
    walSync: read(FSYNC_HISTOGRAM_OFFSET, MetricSlot.FSYNC_SUM_US),
  }
}

/**
 * Question: does backpressure reach a decision when the target stalls, and
 * does it follow a target that is merely slower?
 *
 * One producer on the main thread awaits each `enqueueAsync` of a bench event
 * (as a request handler would) into a queue with the default lane (8 MiB,
 * softLimit 0.8) and an in-thread `send` (maxBatchSize 1000, one batch in
 * flight). The lane's fill is read from `metrics().memoryQueueBytes` every
 * 256 calls, which places the soft-limit crossing within 256 calls.
 *
 * - `backpressure_stalled_decision_ms`: the target never answers;
 *   `maxBlockMs` 1000. ms from the soft-limit crossing to the
 *   BackpressureError. Baseline: maxBlockMs itself.
 * - `backpressure_slow.items_per_s`: the target answers each batch (one in
 *   flight) after count / rate, the rate a tenth of the producer's own
 *   (measured in the same round against a target that answers at once). The
 *   producer's rate from the soft-limit crossing to its last call, about 4 s.
 *   Baseline: the items the target took over the same time, per second.
 * - `backpressure_slow.paced_share`: `metrics().pacedTotal` over the calls
 *   made past the soft-limit crossing — the share of calls that slept.
 *
 * 3 rounds, median.
 */
import { BackpressureError, createQueue, type Queue } from '@vinequeue/core'
import type { BenchEvent } from './event.ts'
import { POOL_MASK } from './event.ts'
import { type Figure, formatValue, progress } from './report.ts'
import { median } from './stats.ts'

const ROUNDS = 3
const LANE_BYTES = 8 * 1024 * 1024
const SOFT_LIMIT = 0.8
const MAX_BLOCK_MS = 1000
const CHECK_EVERY = 256

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

function queueFor(send: (batch: { count: number }) => Promise<undefined>): Queue {
  return createQueue({ send, maxBatchSize: 1000, maxInFlightBatches: 1, maxBlockMs: MAX_BLOCK_MS })
}

function pastSoftLimit(q: Queue): boolean {
  return q.metrics().memoryQueueBytes > LANE_BYTES * SOFT_LIMIT
}

async function stalledRound(pool: readonly BenchEvent[]): Promise<number> {
  let open!: () => void
  const gate = new Promise<void>((r) => {
    open = r
  })
  const q = queueFor(async () => {
    await gate
    return undefined
  })
  await q.start()
  let crossed = Number.NaN
  let n = 0
  try {
    for (;;) {
      await q.enqueueAsync(pool[n & POOL_MASK])
      n++
      if (Number.isNaN(crossed) && (n & (CHECK_EVERY - 1)) === 0 && pastSoftLimit(q))
        crossed = performance.now()
    }
  } catch (err) {
    if (!(err instanceof BackpressureError)) throw err
  }
  const ms = performance.now() - crossed
  open()
  await q.stop({ timeoutMs: 5000 })
  return ms
}

/** The producer's rate (items/s) into a target that answers at once. */
async function producerRate(pool: readonly BenchEvent[]): Promise<number> {
  const q = queueFor(async () => undefined)
  await q.start()
  const n = 200_000
  const t0 = performance.now()
  for (let i = 0; i < n; i++) await q.enqueueAsync(pool[i & POOL_MASK])
  const rate = n / ((performance.now() - t0) / 1000)
  await q.stop({ timeoutMs: 5000 })
  return rate
}

async function slowRound(
  pool: readonly BenchEvent[],
): Promise<{ rate: number; targetRate: number; pacedShare: number }> {
  const nominal = (await producerRate(pool)) / 10
  let delivered = 0
  const q = queueFor(async (batch) => {
    await sleep((batch.count / nominal) * 1000)
    delivered += batch.count
    return undefined
  })
  await q.start()
  const total = Math.round(LANE_BYTES / 100 + nominal * 4)
  let crossed = Number.NaN
  let crossedAt = 0
  let deliveredAt = 0
  for (let n = 0; n < total; n++) {
    await q.enqueueAsync(pool[n & POOL_MASK])
    if (Number.isNaN(crossed) && (n & (CHECK_EVERY - 1)) === 0 && pastSoftLimit(q)) {
      crossed = performance.now()
      crossedAt = n
      deliveredAt = delivered
    }
  }
  const seconds = (performance.now() - crossed) / 1000
  const calls = total - crossedAt
  // What the target actually took over the same time (timers fire late: below `nominal`).
  const targetRate = (delivered - deliveredAt) / seconds
  const pacedShare = q.metrics().pacedTotal / calls
  await q.stop({ timeoutMs: 30_000 })
  return { rate: calls / seconds, targetRate, pacedShare }
}

export async function runBackpressure(pool: readonly BenchEvent[]): Promise<Figure[]> {
  const decisions: number[] = []
  const slow: Array<{ rate: number; targetRate: number; pacedShare: number }> = []
  for (let r = 0; r < ROUNDS; r++) {
    decisions.push(await stalledRound(pool))
    slow.push(await slowRound(pool))
    const s = slow.at(-1)!
    progress(
      `  round ${r + 1}: stalled → BackpressureError ${formatValue(decisions.at(-1)!)} ms after the soft limit; ` +
        `slow target ${formatValue(s.targetRate)} items/s, producer ${formatValue(s.rate)} items/s, ` +
        `${(s.pacedShare * 100).toFixed(1)}% of calls slept`,
    )
  }
  return [
    {
      name: 'backpressure_stalled_decision_ms',
      value: median(decisions),
      unit: 'ms',
      baseline: { name: 'maxBlockMs', value: MAX_BLOCK_MS },
    },
    {
      name: 'backpressure_slow.items_per_s',
      value: median(slow.map((s) => s.rate)),
      unit: 'items/s',
      baseline: {
        name: 'backpressure_slow_target.items_per_s',
        value: median(slow.map((s) => s.targetRate)),
      },
    },
    { name: 'backpressure_slow.paced_share', value: median(slow.map((s) => s.pacedShare)), unit: 'share' },
  ]
}

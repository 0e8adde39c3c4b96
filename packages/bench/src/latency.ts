/**
 * Question: how long does one `q.enqueue(event)` call hold the producing
 * thread — typically, and in the tail — while the pipeline drains to the
 * no-op sender on its own thread?
 *
 * Each call is timed alone: `process.hrtime.bigint()` before and after, the
 * difference stored in a preallocated Float64Array. Calls come in chunks of
 * CHUNK with `await setImmediate()` between chunks, as a server would make
 * them from separate requests (the producer's end-of-burst publish and the
 * queue's messages run in between). Each round is followed by `q.drain()`
 * (not timed); the pipeline drains the default 8 MiB lane concurrently. A
 * call refused with QueueFullError (the pipeline thread starved of CPU by
 * other processes while the producer runs flat out) is not a sample: it is
 * left out, the lane is drained (not timed) before the next chunk, and the
 * progress line counts the refusals.
 *
 * Floor: `packr.pack(event)` with the queue's msgpackr configuration, timed
 * the same way in the same rounds. Both include the cost of the timer pair
 * itself, reported separately as `hrtime.pair.latency_p50_ns`.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises'
import { type Queue, QueueFullError } from '@vinequeue/core'
import { do_not_optimize } from 'mitata'
import { queuePackr } from './enqueue.ts'
import { type BenchEvent, POOL_MASK } from './event.ts'
import { startNoopQueue } from './noop-queue.ts'
import { type Figure, progress } from './report.ts'
import { interleave, median, percentileOfSorted, ROUNDS } from './stats.ts'

const CALLS = 200_000
const CHUNK = 1000
const WARMUP_CALLS = 50_000
const PERCENTILES = [50, 99, 99.9] as const

interface Percentiles {
  p50: number[]
  p99: number[]
  p999: number[]
}

/**
 * Times `calls` single calls of `call(i)`; returns the sorted latencies (ns)
 * of the calls that were not refused (`call` returned false), and awaits
 * `makeRoom` after a chunk with a refusal.
 */
async function timeCalls(
  calls: number,
  call: (i: number) => unknown,
  makeRoom?: () => Promise<void>,
): Promise<Float64Array> {
  const out = new Float64Array(calls)
  let n = 0
  let k = 0
  while (k < calls) {
    const end = Math.min(calls, k + CHUNK)
    let refused = false
    for (; k < end; k++) {
      const t0 = process.hrtime.bigint()
      const ok = call(k)
      const t1 = process.hrtime.bigint()
      if (ok === false) refused = true
      else out[n++] = Number(t1 - t0)
    }
    if (refused) await makeRoom?.()
    await yieldToLoop()
  }
  return out.subarray(0, n).sort()
}

function record(into: Percentiles, sorted: Float64Array): void {
  into.p50.push(percentileOfSorted(sorted, PERCENTILES[0]))
  into.p99.push(percentileOfSorted(sorted, PERCENTILES[1]))
  into.p999.push(percentileOfSorted(sorted, PERCENTILES[2]))
}

export async function runLatency(pool: readonly BenchEvent[]): Promise<Figure[]> {
  const packr = queuePackr()
  const q: Queue = await startNoopQueue()
  const enq: Percentiles = { p50: [], p99: [], p999: [] }
  const pack: Percentiles = { p50: [], p99: [], p999: [] }
  const timer: number[] = []
  let offset = 0
  let refusals = 0
  const enqueueAt = (i: number): boolean => {
    try {
      q.enqueue(pool[(offset + i) & POOL_MASK])
      return true
    } catch (err) {
      if (!(err instanceof QueueFullError)) throw err
      refusals++
      return false
    }
  }
  const makeRoom = (): Promise<void> => q.drain()
  const packAt = (i: number): void => do_not_optimize(packr.pack(pool[(offset + i) & POOL_MASK]))
  try {
    // Warm-up (JIT, the lane's first pages, the pool's first batches): not recorded.
    await timeCalls(WARMUP_CALLS, enqueueAt, makeRoom)
    await timeCalls(WARMUP_CALLS, packAt)
    await q.drain()
    await interleave(
      ROUNDS,
      [
        async () => {
          record(enq, await timeCalls(CALLS, enqueueAt, makeRoom))
          await q.drain()
        },
        async () => {
          record(pack, await timeCalls(CALLS, packAt))
        },
        async () => {
          timer.push(percentileOfSorted(await timeCalls(CALLS, () => undefined), 50))
        },
      ],
      (r) => {
        offset += CALLS
        progress(
          `enqueue latency round ${r}/${ROUNDS}: p50/p99/p99.9 ${enq.p50.at(-1)}/${enq.p99.at(-1)}/${enq.p999.at(-1)} ns` +
            ` (msgpackr.pack ${pack.p50.at(-1)}/${pack.p99.at(-1)}/${pack.p999.at(-1)} ns; timer pair ${timer.at(-1)} ns)` +
            (refusals > 0 ? `; ${refusals} enqueue calls refused (lane full) so far, not counted` : ''),
        )
      },
    )
  } finally {
    await q.stop()
  }
  return [
    {
      name: 'enqueue.latency_p50_ns',
      value: median(enq.p50),
      unit: 'ns',
      baseline: { name: 'msgpackr.pack.latency_p50_ns', value: median(pack.p50) },
    },
    {
      name: 'enqueue.latency_p99_ns',
      value: median(enq.p99),
      unit: 'ns',
      baseline: { name: 'msgpackr.pack.latency_p99_ns', value: median(pack.p99) },
    },
    {
      name: 'enqueue.latency_p999_ns',
      value: median(enq.p999),
      unit: 'ns',
      baseline: { name: 'msgpackr.pack.latency_p999_ns', value: median(pack.p999) },
    },
    { name: 'hrtime.pair.latency_p50_ns', value: median(timer), unit: 'ns' },
  ]
}

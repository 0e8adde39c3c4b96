/**
 * Question: how many items per second reach a real HTTP target through the
 * durable queue — enqueue on this thread → WAL (`syncMode: 'always'`,
 * fdatasync before send) → `@vinequeue/senders/http` (msgpack bodies) in the
 * sender pool → a sink HTTP server in another process that counts what it
 * receives (sink/)? The clock stops when the sink has received every item.
 *
 * Same-run baselines, interleaved in the same rounds:
 * - `wal_always_same_run`: the same queue and WAL with the no-op sender
 *   module instead of HTTP (the `wal_always` round of wal.ts): what HTTP and
 *   the sink add.
 * - `peer.direct_undici`: the naive way without a queue — the producing
 *   thread pushes the same events into an array, `JSON.stringify`s every 1000
 *   and POSTs them with undici, awaiting each response before going on.
 * - `peer.direct_undici_concurrent`: the same with as many requests in
 *   flight as the queue allows (its `maxInFlightBatches`, 4 on 2 cores).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createQueue, type Queue, type QueueOptions } from '@vinequeue/core'
import { DirectPoster, InFlight } from './direct-undici.ts'
import { e2eRound, enqueueAll, feedArrays } from './e2e-memory.ts'
import type { BenchEvent } from './event.ts'
import { startNoopQueue } from './noop-queue.ts'
import { type Figure, progress } from './report.ts'
import { SinkProcess } from './sink/sink-process.ts'
import { interleave, median } from './stats.ts'

/**
 * Items per round. 1 M, as e2e_memory: a much shorter round is mostly
 * ramp-up and the fixed end of a round (the last batch's fsync, send and the
 * sink's answer), and reads low (note `e2e_http.round_length` in the README).
 */
export const HTTP_ITEMS = 1_000_000
/**
 * Untimed items through each subject first. The queue→HTTP path needs about
 * 2 M items to reach its steady rate (the sender thread's and the sink's
 * code being compiled; the slow first rounds also spill to the WAL; note
 * `e2e_http.warm_up` in the README). The steady rate is what is compared.
 */
export const WARM_UP_ITEMS: number = 2 * HTTP_ITEMS
const HTTP_ROUNDS = 5
/** Items per POST of the naive peer (the queue's default maxBatchSize). */
const BATCH = 1000

/** The HTTP sender module, resolved from this package: exact, whatever the working directory. */
const HTTP_SENDER: string = import.meta.resolve('@vinequeue/senders/http')

/** A started queue with a WAL in `dir` (syncMode always) sending msgpack bodies to `url`. */
export async function startHttpQueue(
  dir: string,
  url: string,
  options: Omit<QueueOptions, 'send' | 'sender' | 'wal'> = {},
  /** A `wal.fs` module (the pipeline probe); default: the log's own file system. */
  walFs?: string,
): Promise<Queue> {
  const q = createQueue({
    ...options,
    wal: { dir, syncMode: 'always', ...(walFs ? { fs: walFs } : {}) },
    sender: { module: HTTP_SENDER, options: { url, format: 'msgpack' } },
  })
  await q.start()
  return q
}

/** What one throughput round measured. */
export interface HttpRound {
  readonly itemsPerS: number
  /** CPU the sink process used during the round (ms). */
  readonly sinkCpuMs: number
  readonly requests: number
}

/** After a round: every item arrived exactly once (a retried batch would show as extra items). */
async function checkExactlyOnce(sink: SinkProcess, n: number, what: string): Promise<void> {
  const { items } = await sink.report()
  if (items !== n) progress(`  ${what}: the sink received ${items} items for ${n} sent (duplicates)`)
}

/**
 * One timed round through the queue: `n` enqueues (the e2e producer), then
 * `drain()` so that the last partial batch is cut; the clock stops when the
 * sink reports it has received all `n`.
 */
export async function httpRound(
  q: Queue,
  sink: SinkProcess,
  pool: readonly BenchEvent[],
  n: number,
): Promise<HttpRound> {
  const { reached } = await sink.arm(n, 'count')
  const t0 = performance.now()
  const waited = await enqueueAll(q, pool, n)
  const drained = q.drain()
  const { at, result } = await reached
  await drained // (not timed: the acknowledgements follow the sink's answers)
  await checkExactlyOnce(sink, n, 'e2e_http')
  if (waited > 0)
    progress(`  e2e_http round: the lane was full ${waited} times (those items waited for room)`)
  return { itemsPerS: n / ((at - t0) / 1000), sinkCpuMs: result.cpuMs, requests: result.requests }
}

/**
 * One timed round of the naive peer: the same producer shape (CHUNK events
 * per turn of the event loop), each 1000 events `JSON.stringify`ed and
 * POSTed, at most `inFlight` requests awaiting their response.
 */
async function directRound(
  poster: DirectPoster,
  sink: SinkProcess,
  pool: readonly BenchEvent[],
  n: number,
  inFlight: number,
): Promise<HttpRound> {
  const { reached } = await sink.arm(n, 'count')
  const flight = new InFlight(inFlight)
  const t0 = performance.now()
  await feedArrays(pool, n, BATCH, (batch) => flight.add(poster.post(JSON.stringify(batch))))
  await flight.settled()
  const { at, result } = await reached
  await checkExactlyOnce(sink, n, 'direct undici')
  return { itemsPerS: n / ((at - t0) / 1000), sinkCpuMs: result.cpuMs, requests: result.requests }
}

function describe(r: HttpRound | undefined): string {
  return r ? `${(r.itemsPerS / 1e6).toFixed(3)} (sink ${r.sinkCpuMs.toFixed(0)} ms CPU)` : '-'
}

export async function runE2eHttp(pool: readonly BenchEvent[]): Promise<Figure[]> {
  const root = mkdtempSync(join(tmpdir(), 'vq-bench-http-'))
  const sink = await SinkProcess.start()
  const poster = new DirectPoster(sink.url)
  const queues: Queue[] = []
  const http: HttpRound[] = []
  const walAlways: number[] = []
  const direct: HttpRound[] = []
  const concurrent: HttpRound[] = []
  try {
    const httpQ = await startHttpQueue(join(root, 'http'), sink.url)
    queues.push(httpQ)
    const walQ = await startNoopQueue({ wal: { dir: join(root, 'noop'), syncMode: 'always' } })
    queues.push(walQ)
    const inFlight = httpQ.options.maxInFlightBatches
    progress(
      `  sink ${sink.url} (pid of its own); queue: ${httpQ.options.senderThreads} sender thread(s) × ${httpQ.options.senderConcurrency}, ` +
        `${inFlight} batches in flight; naive concurrent peer: ${inFlight} requests in flight`,
    )
    // Warm-up of every subject, not recorded.
    await httpRound(httpQ, sink, pool, WARM_UP_ITEMS)
    await e2eRound(walQ, pool, WARM_UP_ITEMS)
    await directRound(poster, sink, pool, HTTP_ITEMS / 10, 1)
    await directRound(poster, sink, pool, HTTP_ITEMS / 10, inFlight)
    await interleave(
      HTTP_ROUNDS,
      [
        async () => void http.push(await httpRound(httpQ, sink, pool, HTTP_ITEMS)),
        async () => void walAlways.push(await e2eRound(walQ, pool, HTTP_ITEMS)),
        async () => void direct.push(await directRound(poster, sink, pool, HTTP_ITEMS, 1)),
        async () => void concurrent.push(await directRound(poster, sink, pool, HTTP_ITEMS, inFlight)),
      ],
      (r) =>
        progress(
          `e2e_http round ${r}/${HTTP_ROUNDS} (M items/s): queue→HTTP ${describe(http.at(-1))}, ` +
            `wal_always no-op ${(walAlways.at(-1)! / 1e6).toFixed(3)}, direct undici ${describe(direct.at(-1))}, ` +
            `${inFlight} in flight ${describe(concurrent.at(-1))}`,
        ),
    )
    const m = httpQ.metrics()
    progress(
      `  e2e_http queue: ${m.batchesSentTotal} batches, ${m.fsyncsTotal} fsyncs (p50 ${m.walSyncLatencyP50} ms), ${m.walSpilledTotal} items spilled, send p50 ${m.sendLatencyP50} ms, ` +
        `p99 ${m.sendLatencyP99} ms, retries ${m.retriesTotal}`,
    )
  } finally {
    for (const q of queues) await q.stop()
    await poster.close()
    await sink.close()
    rmSync(root, { recursive: true, force: true })
  }
  const e2eHttp = median(http.map((r) => r.itemsPerS))
  const queueFigure = { name: 'e2e_http.items_per_s', value: e2eHttp }
  return [
    {
      ...queueFigure,
      unit: 'items/s',
      baseline: { name: 'wal_always_same_run.items_per_s', value: median(walAlways) },
    },
    {
      name: 'peer.direct_undici.items_per_s',
      value: median(direct.map((r) => r.itemsPerS)),
      unit: 'items/s',
      baseline: queueFigure,
    },
    {
      name: 'peer.direct_undici_concurrent.items_per_s',
      value: median(concurrent.map((r) => r.itemsPerS)),
      unit: 'items/s',
      baseline: queueFigure,
    },
  ]
}

/**
 * Question: how long does an item take from `enqueue` to a real HTTP target
 * at a steady load the queue can carry? The path of e2e-http.ts (WAL
 * `syncMode: 'always'`, `@vinequeue/senders/http` with msgpack bodies, the
 * sink process) with `preset: 'lowLatency'` (batches of ≤ 100 items, cut
 * within 5 ms), at half of that preset's own maximum, measured first in this
 * step (`e2e_http_low_latency.items_per_s`, 3 interleaved rounds of
 * e2e-http.ts beside the default preset's). The load is offered by a paced
 * producer: every ~1 ms tick (a `setTimeout(1)`) enqueues the items that are
 * due by then, so the offered rate holds on average however late a tick is.
 *
 * Each item carries its enqueue time in `ts`; the sink decodes every body and
 * records `arrival - ts` per item. Both processes stamp with
 * `performance.timeOrigin + performance.now()` (sink/protocol.ts): sub-ms
 * resolution, the wall clock at process start plus a monotonic clock.
 * `Date.now()` would be the same clock with 1 ms steps, too coarse for
 * latencies of a few ms. The offset between the two processes' clocks is
 * measured (IPC ping of least round trip) and subtracted.
 *
 * Baseline, same rounds and load: `peer.direct_undici` paced — no queue, no
 * WAL: each tick's items are `JSON.stringify`ed in POSTs of ≤ 100 (the
 * preset's batch size) and sent at once with undici, not awaited (a Pool
 * with up to 16 sockets).
 *
 * A second level: the default preset (1000-item batches) at half of
 * `e2e_http.items_per_s` from the same run (this step's own measurement when
 * run alone): `e2e_http.latency_p50_ms_default_preset_at_half_max`, `…_p99_…`.
 * That load is more than the lowLatency preset carries at all (100-item
 * batches: ten times the requests, frames and pipeline passes per item),
 * which would measure queueing delay growing with the round's length, not
 * latency. A level whose delivered rate falls short of the offered one is
 * flagged OVERLOADED in the progress lines; `e2e_http.latency_delivered_items_per_s`
 * records the lowLatency level's.
 *
 * Both levels run on the queues the maxima were measured with: warm (the
 * HTTP path reaches its steady rate after about 2 M items, e2e-http.ts;
 * fresh queues show far higher p50s in their first rounds). Latency
 * outliers follow the disk: WAL-first sends wait for the group commit's
 * fdatasync (a segment rotation's first syncs included; note
 * `e2e_http.latency_cold_and_fsync` in the README).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { type Queue, QueueFullError } from '@vinequeue/core'
import { DirectPoster, InFlight } from './direct-undici.ts'
import { HTTP_ITEMS, httpRound, startHttpQueue, WARM_UP_ITEMS } from './e2e-http.ts'
import { type BenchEvent, makeEvents, POOL_MASK } from './event.ts'
import { type Distribution, distribution, ProbeCollector, probeFsModule } from './pipeline-probe/collector.ts'
import { type Figure, progress } from './report.ts'
import { type SchedShare, schedShare, schedTotals } from './sched-stat.ts'
import type { SinkLatency } from './sink/protocol.ts'
import { wallClockMs } from './sink/protocol.ts'
import { SinkProcess } from './sink/sink-process.ts'
import { interleave, median } from './stats.ts'

/** Seconds of paced load per round and subject. */
const SECONDS = 2
const LATENCY_ROUNDS = 5
/** Items per POST of the paced naive peer: the lowLatency preset's maxBatchSize. */
const POST_ITEMS = 100
/** Requests the paced naive peer may have in flight (its pool's sockets). */
const POST_IN_FLIGHT = 16
/** The pipeline probe's tag for the lowLatency queue, and the idle thread's. */
const LOW_LATENCY_TAG = 'lowLatency'
const IDLE_TAG = 'idle'

/**
 * Offers `n` items at `rate` items/s: every tick, `emit(from, to)` gets the
 * items due by now. Returns the rate actually offered (items / time from the
 * first tick to the last emit).
 */
async function pace(
  rate: number,
  n: number,
  emit: (from: number, to: number) => void,
  t0: number = performance.now(),
): Promise<number> {
  let sent = 0
  let last = t0
  while (sent < n) {
    last = performance.now()
    const due = Math.min(n, Math.floor(((last - t0) * rate) / 1000))
    if (due > sent) {
      emit(sent, due)
      sent = due
    }
    if (sent < n) await sleep(1)
  }
  return n / ((last - t0) / 1000)
}

interface LatencyRound {
  readonly latency: SinkLatency
  /** Items/s offered by the paced producer. */
  readonly offered: number
  /** Items/s the sink received: n / (time from the first tick to the last item's arrival). */
  readonly delivered: number
  /** This process and the sink's over the round (sched-stat.ts); undefined without /proc schedstat. */
  readonly sched: SchedShare | undefined
}

/** While a round of the probed queue runs, its probe's figures (and the idle thread's) count. */
interface ProbeWindow {
  readonly probe: ProbeCollector
  readonly tag: string
}

async function queueLatencyRound(
  q: Queue,
  sink: SinkProcess,
  events: BenchEvent[],
  rate: number,
  n: number,
  probed?: ProbeWindow,
): Promise<LatencyRound> {
  const { reached } = await sink.arm(n, 'latency')
  let full = 0
  const waiting: Array<Promise<unknown>> = []
  probed?.probe.begin(probed.tag, IDLE_TAG)
  const pids = [process.pid, sink.pid]
  const before = schedTotals(pids)
  const t0 = performance.now()
  const offered = await pace(
    rate,
    n,
    (from, to) => {
      for (let i = from; i < to; i++) {
        const e = events[i & POOL_MASK]!
        e.ts = wallClockMs()
        try {
          q.enqueue(e)
        } catch (err) {
          if (!(err instanceof QueueFullError)) throw err
          // Waits for room, not awaited (the pacing goes on); a copy, as the pool's object is
          // stamped again when the pool comes round. The progress line says how many waited.
          full++
          waiting.push(q.enqueueAsync({ ...e }))
        }
      }
    },
    t0,
  )
  await Promise.all(waiting)
  if (full > 0)
    progress(`  e2e_http latency: the lane was full for ${full} items at ${Math.round(rate)} items/s`)
  // The round's last, partial batch is cut now rather than at the linger (5 s
  // for the default preset): at most one batch of the round's items.
  const drained = q.drain()
  const { at, result } = await reached
  await drained
  const sched = schedShare(before, schedTotals(pids))
  probed?.probe.end(probed.tag, IDLE_TAG)
  return { latency: result.latency!, offered, delivered: n / ((at - t0) / 1000), sched }
}

async function directLatencyRound(
  poster: DirectPoster,
  sink: SinkProcess,
  events: BenchEvent[],
  rate: number,
  n: number,
): Promise<LatencyRound> {
  const { reached } = await sink.arm(n, 'latency')
  const flight = new InFlight(Number.POSITIVE_INFINITY) // never waits: the pool queues beyond its sockets
  const pids = [process.pid, sink.pid]
  const before = schedTotals(pids)
  const t0 = performance.now()
  const offered = await pace(
    rate,
    n,
    (from, to) => {
      for (let at = from; at < to; at += POST_ITEMS) {
        const batch: BenchEvent[] = []
        for (let i = at; i < Math.min(to, at + POST_ITEMS); i++) {
          const e = events[i & POOL_MASK]!
          e.ts = wallClockMs()
          batch.push(e)
        }
        void flight.add(poster.post(JSON.stringify(batch)))
      }
    },
    t0,
  )
  await flight.settled()
  const { at, result } = await reached
  const sched = schedShare(before, schedTotals(pids))
  return { latency: result.latency!, offered, delivered: n / ((at - t0) / 1000), sched }
}

/**
 * Maximum items/s of the HTTP path with the default and the lowLatency
 * preset, 3 interleaved rounds of e2e-http.ts each, medians. The two queues
 * (`qd`, `ql`, pushed to `queues` for the caller to stop) then carry the
 * latency levels.
 */
async function e2eHttpMaxima(
  pool: readonly BenchEvent[],
  sink: SinkProcess,
  root: string,
  queues: Queue[],
): Promise<{ defaults: number; lowLatency: number; qd: Queue; ql: Queue }> {
  const defaults: number[] = []
  const lowLatency: number[] = []
  const qd = await startHttpQueue(join(root, 'max-default'), sink.url)
  queues.push(qd)
  // The lowLatency queue's pipeline thread carries the probe (its `wal.fs` module): pauses, fdatasyncs.
  const ql = await startHttpQueue(
    join(root, 'max-low-latency'),
    sink.url,
    { preset: 'lowLatency' },
    probeFsModule(LOW_LATENCY_TAG),
  )
  queues.push(ql)
  await httpRound(qd, sink, pool, WARM_UP_ITEMS)
  await httpRound(ql, sink, pool, WARM_UP_ITEMS)
  await interleave(3, [
    async () => void defaults.push((await httpRound(qd, sink, pool, HTTP_ITEMS)).itemsPerS),
    async () => void lowLatency.push((await httpRound(ql, sink, pool, HTTP_ITEMS)).itemsPerS),
  ])
  return { defaults: median(defaults), lowLatency: median(lowLatency), qd, ql }
}

/** The rounds of one load level: the queue and the paced naive peer. */
interface Level {
  readonly label: string
  readonly rate: number
  readonly q: Queue
  /** The queue's pipeline thread is probed under this tag. */
  readonly probed?: ProbeWindow
  readonly queue: LatencyRound[]
  readonly direct: LatencyRound[]
}

function show(r: LatencyRound | undefined, offset: number): string {
  if (!r) return '-'
  const behind = r.delivered < 0.9 * r.offered ? ' OVERLOADED' : ''
  return (
    `p50 ${(r.latency.p50 - offset).toFixed(2)} p99 ${(r.latency.p99 - offset).toFixed(2)} ms, ` +
    `delivered ${Math.round(r.delivered)}/s of ${Math.round(r.offered)}/s${behind}` +
    (r.sched
      ? `, CPU ${r.sched.cores.toFixed(2)} cores, run-queue wait ${r.sched.waitMsPerS.toFixed(0)} ms/s`
      : '')
  )
}

export async function runE2eHttpLatency(
  pool: readonly BenchEvent[],
  figures: readonly Figure[],
): Promise<Figure[]> {
  const root = mkdtempSync(join(tmpdir(), 'vq-bench-http-latency-'))
  const sink = await SinkProcess.start()
  const poster = new DirectPoster(sink.url, POST_IN_FLIGHT)
  const queues: Queue[] = []
  const probe = new ProbeCollector()
  const measured = figures.find((f) => f.name === 'e2e_http.items_per_s')?.value
  let maxima = { defaults: Number.NaN, lowLatency: Number.NaN }
  let offset = 0
  const levels: Level[] = []
  try {
    const measuredMaxima = await e2eHttpMaxima(pool, sink, root, queues)
    maxima = measuredMaxima
    // The load of the named figures: half of the e2e_http step's figure (this step's own measurement when run alone).
    const max = measured ?? maxima.defaults
    const lowLatencyMax = maxima.lowLatency
    const { ql: low, qd: defaults } = measuredMaxima
    levels.push(
      {
        label: 'lowLatency preset at half its max',
        rate: lowLatencyMax / 2,
        q: low,
        probed: { probe, tag: LOW_LATENCY_TAG },
        queue: [],
        direct: [],
      },
      { label: 'default preset at half e2e_http', rate: max / 2, q: defaults, queue: [], direct: [] },
    )
    // This step stamps `ts`: its own events, so the shared pool stays as generated.
    const events = makeEvents()
    const clock = await sink.clockOffset()
    offset = clock.offsetMs
    progress(
      `  loads: ${levels.map((l) => `${l.label} ${Math.round(l.rate)} items/s`).join(', ')} ` +
        `(maxima: e2e_http ${Math.round(max)}${measured === undefined ? ' (this step)' : ' (e2e_http step)'}, ` +
        `this step: default preset ${Math.round(maxima.defaults)}, lowLatency preset ${Math.round(lowLatencyMax)} items/s); ` +
        `${SECONDS} s per round; sink clock offset ${(offset * 1000).toFixed(0)} µs ` +
        `(IPC round trip ${(clock.rttMs * 1000).toFixed(0)} µs), subtracted`,
    )
    // Warm-up at each level's load (a quarter round), not recorded.
    for (const l of levels) {
      await queueLatencyRound(l.q, sink, events, l.rate, Math.round((l.rate * SECONDS) / 4))
      await directLatencyRound(poster, sink, events, l.rate, Math.round((l.rate * SECONDS) / 4))
    }
    await interleave(
      LATENCY_ROUNDS,
      levels.flatMap((level) => {
        const n = Math.round(level.rate * SECONDS)
        return [
          async () =>
            void level.queue.push(
              await queueLatencyRound(level.q, sink, events, level.rate, n, level.probed),
            ),
          async () => void level.direct.push(await directLatencyRound(poster, sink, events, level.rate, n)),
        ]
      }),
      (r) => {
        for (const l of levels) {
          progress(
            `e2e_http latency round ${r}/${LATENCY_ROUNDS}, ${l.label}: queue ${show(l.queue.at(-1), offset)}; ` +
              `direct undici ${show(l.direct.at(-1), offset)}`,
          )
        }
      },
    )
    for (const l of levels) {
      const m = l.q.metrics()
      progress(
        `  ${l.label}: ${m.batchesSentTotal} batches (${(m.sentTotal / Math.max(1, m.batchesSentTotal)).toFixed(0)} items each), ` +
          `${m.fsyncsTotal} fsyncs (p50 ${m.walSyncLatencyP50} p99 ${m.walSyncLatencyP99} p999 ${m.walSyncLatencyP999} ms), ` +
          `send p50 ${m.sendLatencyP50} p99 ${m.sendLatencyP99} ms (since the queue started)`,
      )
    }
    await probe.settle()
  } finally {
    for (const q of queues) await q.stop()
    await probe.close()
    await poster.close()
    await sink.close()
    rmSync(root, { recursive: true, force: true })
  }
  const pick = (rounds: LatencyRound[], key: 'p50' | 'p99'): number =>
    median(rounds.map((r) => r.latency[key] - offset))
  const [halfLow, halfDefault] = levels as [Level, Level]
  const pauses = distribution(probe.pauses(LOW_LATENCY_TAG))
  const idle = distribution(probe.pauses(IDLE_TAG, LOW_LATENCY_TAG))
  const syncMs = probe.fdatasyncs(LOW_LATENCY_TAG)
  const fdatasyncs = distribution(syncMs)
  // With WAL-first every batch waits for a group commit. An item enqueued during the first d - 10 ms
  // of an fdatasync of d > 10 ms waits over 10 ms for that sync alone: the share of the rounds' time
  // in such stretches is a floor under the share of items slower than 10 ms.
  const slowShare = syncMs.reduce((sum, d) => sum + Math.max(0, d - 10), 0) / probe.windowMs(LOW_LATENCY_TAG)
  const ms = (d: Distribution): string =>
    `p50 ${d.p50.toFixed(2)} p99 ${d.p99.toFixed(2)} p999 ${d.p999.toFixed(2)} max ${d.max.toFixed(2)} ms`
  progress(
    `  lowLatency queue's pipeline thread, during its ${halfLow.queue.length} rounds: longest pause per second ${ms(pauses)} ` +
      `(${pauses.n} s; an idle thread: ${ms(idle)}); fdatasync ${ms(fdatasyncs)} (${fdatasyncs.n}; ` +
      `an item enqueued in ${(slowShare * 100).toFixed(1)}% of the rounds' time waited over 10 ms for one)`,
  )
  // Both processes' threads (bench + queue, sink): cores kept busy and the time runnable threads
  // waited for a core, per second of round — the queue's rounds beside direct undici's.
  const schedFigures = (level: Level): Figure[] => {
    const of = (rounds: LatencyRound[], key: keyof SchedShare): number | undefined => {
      const values = rounds.flatMap((r) => (r.sched ? [r.sched[key]] : []))
      return values.length > 0 ? median(values) : undefined
    }
    return (
      [
        ['cores', 'cores', 'latency_cpu_cores'],
        ['waitMsPerS', 'ms/s', 'latency_runqueue_wait_ms_per_s'],
      ] as const
    ).flatMap(([key, unit, name]) => {
      const value = of(level.queue, key)
      const direct = of(level.direct, key)
      if (value === undefined || direct === undefined) return []
      return [
        {
          name: `e2e_http.${name}`,
          value,
          unit,
          baseline: { name: `peer.direct_undici.${name}`, value: direct },
        },
      ]
    })
  }
  const latencyFigures = (level: Level, suffix: string): Figure[] =>
    (['p50', 'p99'] as const).map((p) => ({
      name: `e2e_http.latency_${p}_ms${suffix}`,
      value: pick(level.queue, p),
      unit: 'ms',
      baseline: { name: `peer.direct_undici.latency_${p}_ms${suffix}`, value: pick(level.direct, p) },
    }))
  return [
    ...latencyFigures(halfLow, ''),
    {
      name: 'e2e_http.latency_delivered_items_per_s',
      value: median(halfLow.queue.map((r) => r.delivered)),
      unit: 'items/s',
      baseline: {
        name: 'e2e_http.latency_offered_items_per_s',
        value: median(halfLow.queue.map((r) => r.offered)),
      },
    },
    {
      name: 'e2e_http_low_latency.items_per_s',
      value: maxima.lowLatency,
      unit: 'items/s',
      baseline: { name: 'e2e_http_same_run.items_per_s', value: maxima.defaults },
    },
    ...schedFigures(halfLow),
    ...latencyFigures(halfDefault, '_default_preset_at_half_max'),
    ...(['p99', 'p999'] as const).map((p) => ({
      name: `e2e_http.wal_pipeline_pause_${p}_ms`,
      value: pauses[p],
      unit: 'ms',
      baseline: { name: `peer.idle_thread.pause_${p}_ms`, value: idle[p] },
    })),
    ...(['p50', 'p99', 'p999', 'max'] as const).map((p) => ({
      name: `e2e_http.wal_fdatasync_${p}_ms`,
      value: fdatasyncs[p],
      unit: 'ms',
    })),
  ]
}

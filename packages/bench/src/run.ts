/**
 * `pnpm bench`: runs every question in sequence, printing progress on stderr,
 * then the table on stdout, and writes results/latest.json and its chart,
 * results/latest.svg.
 */
import { availableParallelism, loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { runBackpressure } from './backpressure.ts'
import { writeChart } from './chart.ts'
import { runCrashDuplicates } from './crash-duplicates.ts'
import { runE2eHttp } from './e2e-http.ts'
import { runE2eHttpLatency } from './e2e-http-latency.ts'
import { runE2eKafka } from './e2e-kafka.ts'
import { runE2eMemory } from './e2e-memory.ts'
import { runEnqueue } from './enqueue.ts'
import { makeEvents } from './event.ts'
import { runEventLoopDelay } from './event-loop-delay.ts'
import { runLatency } from './latency.ts'
import { runPeers } from './peers.ts'
import { runPino } from './pino.ts'
import { runPoolTopology } from './pool-topology.ts'
import { type Figure, formatTable, progress, writeJson } from './report.ts'
import { runStartBacklog } from './start-backlog.ts'
import { runWal } from './wal.ts'
import { runWalCodec } from './wal-codec.ts'
import { runWalLog } from './wal-log.ts'

const RESULTS = fileURLToPath(new URL('../results/latest.json', import.meta.url))
const CHART = fileURLToPath(new URL('../results/latest.svg', import.meta.url))

interface Step {
  readonly name: string
  readonly what: string
  readonly run: (pool: ReturnType<typeof makeEvents>, figures: readonly Figure[]) => Promise<Figure[]>
}

const STEPS: readonly Step[] = [
  {
    name: 'enqueue',
    what: 'mitata micro benchmarks (enqueue, enqueueBatch, enqueueRaw) beside their floors',
    run: (pool) => runEnqueue(pool),
  },
  { name: 'latency', what: 'single enqueue calls timed with hrtime.bigint', run: (pool) => runLatency(pool) },
  {
    name: 'e2e_memory',
    what: 'enqueue → pipeline → no-op sender module in the pool',
    run: (pool, figures) =>
      runE2eMemory(
        pool,
        figures.find((f) => f.name === 'enqueue.items_per_s'),
      ),
  },
  {
    name: 'event_loop_delay',
    what: 'producer thread at full speed, beside an in-thread array batcher',
    run: (pool) => runEventLoopDelay(pool),
  },
  { name: 'peers', what: 'thread-stream, array batcher, VineQueue e2e', run: (pool) => runPeers(pool) },
  {
    name: 'pino',
    what: 'pino → VineQueue destination, beside pino.transport() (thread-stream) and pino.destination() (sonic-boom to a file)',
    run: (pool) => runPino(pool),
  },
  {
    name: 'backpressure',
    what: 'an awaiting enqueueAsync producer against a stalled target (time to BackpressureError) and a target at a tenth of its rate (rate followed)',
    run: (pool) => runBackpressure(pool),
  },
  {
    name: 'wal',
    what: 'end to end with the WAL on (syncMode always: plain, snappy, AES-GCM) beside memory-only and a naive fsync loop',
    run: (pool) => runWal(pool),
  },
  {
    name: 'crash_duplicates',
    what: 'kill -9 of a WAL-first producer (HTTP sender, flush() every 500 items), restart: items delivered twice per kill beside maxInFlightBatches × maxBatchSize',
    run: () => runCrashDuplicates(),
  },
  {
    name: 'wal_log',
    what: '@vinequeue/wal alone: sync() latency after a batch append, recovery (open + frames) throughput',
    run: (pool) => runWalLog(pool),
  },
  {
    name: 'wal_codec',
    what: 'zstd (node:zlib, levels -5, 1 and 3) beside snappy on WAL batch payloads: size, compress and decompress MB/s',
    run: (pool) => runWalCodec(pool),
  },
  {
    name: 'e2e_http',
    what: 'enqueue → WAL (always) → HTTP sender → sink process, beside the no-op WAL queue and direct undici POSTs',
    run: (pool) => runE2eHttp(pool),
  },
  {
    name: 'e2e_http_latency',
    what: 'per-item latency enqueue → sink: lowLatency preset at half its own maximum, default preset at half the e2e_http rate, beside paced direct undici POSTs',
    run: (pool, figures) => runE2eHttpLatency(pool, figures),
  },
  {
    name: 'e2e_kafka',
    what: "enqueue → Kafka sender → librdkafka's mock cluster (another process), beside the same Kafka producer fed from the main thread: items/s and CPU per item",
    run: (pool) => runE2eKafka(pool),
  },
  {
    name: 'start_with_backlog',
    what: 'queue.start() on a WAL holding ~1 GiB of pending items, and its re-delivery to the no-op sender',
    run: (pool) => runStartBacklog(pool),
  },
  {
    name: 'pool_topology',
    what: 'one pool doing decode+encode+I/O vs a processor pool feeding a sender pool',
    run: (pool) => runPoolTopology(pool),
  },
]

/** 1-minute load average (the bench itself adds ~1–2 on its own). */
function load(): string {
  return loadavg()[0]!.toFixed(2)
}

async function main(): Promise<void> {
  const started = performance.now()
  // `node dist/run.js [step ...]` runs only the named steps (for development);
  // JSON is written only by a full run.
  const only = process.argv.slice(2)
  if (only.includes('--help') || only.includes('-h')) {
    process.stdout.write(
      `usage: node dist/run.js [step ...]   (no step: all of them, and results/latest.json written)\n` +
        STEPS.map((s) => `  ${s.name.padEnd(18)} ${s.what}\n`).join(''),
    )
    return
  }
  const unknown = only.filter((n) => !STEPS.some((s) => s.name === n))
  if (unknown.length > 0) {
    throw new Error(`unknown step(s) ${unknown.join(', ')}; steps: ${STEPS.map((s) => s.name).join(', ')}`)
  }
  const steps = only.length > 0 ? STEPS.filter((s) => only.includes(s.name)) : STEPS
  progress(
    `node ${process.version}, ${process.platform}/${process.arch}, ${availableParallelism()} cores, load average ${load()}`,
  )
  // Pre-generated once, outside every timed region (event.ts).
  const pool = makeEvents()
  const figures: Figure[] = []
  for (const step of steps) {
    progress(`${step.name}: ${step.what}`)
    figures.push(...(await step.run(pool, figures)))
  }
  process.stdout.write(`\n${formatTable(figures)}\n\n`)
  if (steps === STEPS) {
    writeJson(RESULTS, figures)
    writeChart(RESULTS, CHART)
    progress(`wrote ${RESULTS} and ${CHART}`)
  }
  // Other processes on the machine skew every figure: say how busy it was.
  progress(`done in ${((performance.now() - started) / 1000).toFixed(0)} s, load average ${load()}`)
}

await main()

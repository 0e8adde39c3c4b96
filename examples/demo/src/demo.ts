/**
 * `pnpm demo`: VineQueue's real pipeline against a target that fails.
 *
 *   main thread ─┐                                                      sink process
 *   worker 1 ────┼─ lanes ─▶ pipeline thread ─▶ sender pool ── HTTP ──▶ (node:http, 127.0.0.1)
 *   worker 2 ────┘           WAL (fdatasync'ed)  @vinequeue/senders/http    503, then refused,
 *                            circuit breaker     NDJSON                    then back
 *
 * The sink goes down by itself once it has stored 30 % of the events; the
 * queue retries, opens its circuit, keeps taking events into the WAL, and
 * delivers the backlog once the sink is back. At the end the sink's ledger
 * (id → copies, checksum) is checked against the events as produced.
 *
 *   node examples/demo/dist/demo.js [--events 1500000] [--producers 2] [--outage-ms 3000]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { type CircuitState, createQueue, type Queue } from '@vinequeue/core'
import type { HttpSenderOptions } from '@vinequeue/senders/http'
import { shares } from './events.ts'
import { parseFlags } from './flags.ts'
import { int } from './format.ts'
import { produce } from './produce.ts'
import type { ProducerThreadData } from './producer-thread.ts'
import { startProgress } from './progress.ts'
import { type Sink, startSink } from './sink/host.ts'
import type { SinkPhase } from './sink/protocol.ts'
import { printSummary } from './summary.ts'
import { verify } from './verify.ts'

/** The sink goes down once it has stored this share of the events (mid-delivery). */
const OUTAGE_AT = 0.3
/** A run that has not finished by then has failed (the demo takes ~20 s here). */
const WATCHDOG_MS = 180_000

const flags = parseFlags()
const refs = ['main', ...Array.from({ length: flags.producers }, (_, i) => `worker-${i + 1}`)]
const plan = shares(flags.events, refs)

// Cleanup that runs however the process ends: the sink is SIGKILLed and the
// WAL directory removed even after an uncaught error or process.exit().
const walDir = mkdtempSync(join(tmpdir(), 'vinequeue-demo-wal-'))
let sinkToKill: Sink | undefined
let queueToStop: Queue | undefined
const cleanup = (): void => {
  sinkToKill?.kill()
  // (Retries: a pipeline thread still writing could add a file while the folder is emptied.)
  rmSync(walDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 })
}
process.once('exit', cleanup)
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130))

try {
  const sink = await startSink(flags.events)
  sinkToKill = sink
  const deadLetters = { items: 0 }
  const queue = createQueue({
    // The sender module is loaded by the sender pool's threads: resolved
    // here, where it is a dependency, it works from any directory.
    sender: {
      module: import.meta.resolve('@vinequeue/senders/http'),
      options: { url: sink.url, format: 'ndjson' } satisfies HttpSenderOptions,
    },
    wal: { dir: walDir, syncMode: 'always' },
    // The breaker opens when failures are half the outcomes of its window.
    // While the sink is down only the few batches in flight (4 here) fail,
    // retrying with a growing backoff, so the window's successes must age
    // out first: the default 10 s window would open only ~10 s into the
    // outage. A 1 s window opens ~1 s in; probing every second (default 5 s)
    // shows open → half-open → closed within the outage.
    circuitBreaker: { windowMs: 1000, resetTimeoutMs: 1000 },
    onDeadLetter: ({ items, reason }) => {
      deadLetters.items += items.length
      console.error(`\ndead letter: ${items.length} items (${reason})`)
    },
  })
  queue.on('error', (err) => console.error('\nqueue error:', err))

  console.log(
    `VineQueue demo: ${int(flags.events)} events from ${refs.length} producers (main thread + ${flags.producers} workers)`,
  )
  // Worker threads share this process's Node; the sink is forked with process.execPath.
  console.log(`  Node ${process.version} (sink process: Node ${sink.node})`)
  console.log(`  WAL ${walDir} (syncMode always) → @vinequeue/senders/http, NDJSON → sink ${sink.url}`)
  console.log(
    flags.outageMs > 0
      ? `  the sink goes down once it has stored ${int(Math.ceil(flags.events * OUTAGE_AT))} events: 503 for ${flags.outageMs / 2} ms, then connections refused for ${flags.outageMs / 2} ms\n`
      : '  no outage (--outage-ms 0)\n',
  )

  const startedAt = performance.now()
  const progress = startProgress(
    { metrics: () => queue.metrics(), delivered: () => sink.stats.unique },
    startedAt,
  )
  const circuit: CircuitState[] = []
  queue.on('circuit', (state) => {
    circuit.push(state)
    progress.mark(`circuit ${state}`)
  })
  const phaseText: Record<SinkPhase, string> = {
    errors: 'down (503)',
    refusing: 'down (refusing)',
    up: 'up',
  }
  sink.on('phase', (phase) => {
    progress.sinkState(phaseText[phase])
    progress.mark(
      phase === 'up'
        ? 'sink back up'
        : `sink down: ${phase === 'errors' ? 'answering 503' : 'refusing connections'}`,
    )
  })
  // A sink that dies, or a run that hangs, fails the demo instead of waiting forever.
  const failure = new Promise<never>((_, reject) => {
    sink.once('failed', reject)
    setTimeout(() => reject(new Error(`not finished after ${WATCHDOG_MS / 1000} s`)), WATCHDOG_MS).unref()
  })

  const run = async () => {
    queueToStop = queue
    await queue.start()
    if (flags.outageMs > 0) {
      const half = Math.floor(flags.outageMs / 2)
      sink.armOutage({
        afterItems: Math.ceil(flags.events * OUTAGE_AT),
        errorMs: half,
        refuseMs: flags.outageMs - half,
      })
    }
    const workers = plan.slice(1).map((share) => runProducerThread({ handle: queue.producerPort(), share }))
    await Promise.all([produce(queue, plan[0]!), ...workers])
    const producedAt = performance.now()
    await queue.drain()
    const drainedAt = performance.now()
    const stopReport = await queue.stop()
    const sinkReport = await sink.report()
    progress.stop() // after the report: its last line has the sink's final count
    return { producedAt, drainedAt, stopReport, metrics: queue.metrics(), sinkReport }
  }
  const result = await Promise.race([run(), failure])
  console.log(`\nverifying the sink's ledger against the ${int(flags.events)} events as produced…`)

  const verification = await verify(result.sinkReport.ledger, flags.events)
  const ok = printSummary({
    flags,
    producers: refs.length,
    verification,
    deadLetters: deadLetters.items,
    undelivered: result.stopReport.undeliveredCount,
    metrics: result.metrics,
    sink: result.sinkReport,
    circuit,
    peak: progress.peak,
    produceMs: result.producedAt - startedAt,
    totalMs: result.drainedAt - startedAt,
  })
  await sink.close()
  process.exitCode = ok ? 0 : 1
} catch (err) {
  console.error('\ndemo failed:', err)
  // Stop the queue's threads writing to the WAL folder before it is removed.
  await queueToStop?.stop({ timeoutMs: 200 }).catch(() => undefined)
  // Producer threads or a queue still retrying would keep the process up: leave now (cleanup runs on exit).
  process.exit(1)
}

/** Runs one producer worker (compiled JS beside this file) to completion. */
function runProducerThread(data: ProducerThreadData): Promise<void> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./producer-thread.js', import.meta.url), {
      workerData: data,
      name: `vinequeue-demo-${data.share.ref}`,
    })
    let done = false
    worker.once('message', () => (done = true))
    worker.once('error', reject)
    worker.once('exit', (code) =>
      done
        ? resolve()
        : reject(new Error(`producer ${data.share.ref} exited with code ${code} before finishing`)),
    )
  })
}

/**
 * `pnpm demo`: VineQueue end to end on this machine.
 *
 *   main thread ─┐
 *   worker 1 ────┼─ SharedArrayBuffer lanes ─▶ pipeline thread ─▶ sender pool ─▶ NDJSON file
 *   worker 2 ────┘        (no postMessage per item)   (batches)    (@vinequeue/example-file-sender)
 *
 * Producers enqueue numbered events flat out; a live line shows the shared
 * counters; then drain, stop, print the metrics, and read the file back to
 * prove every event arrived exactly once.
 *
 *   node examples/demo/dist/demo.js [--items 2000000] [--producers 2]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Worker } from 'node:worker_threads'
import { createQueue, type Metrics } from '@vinequeue/core'
import type { FileSenderOptions } from '@vinequeue/example-file-sender'
import { produce } from './events.ts'
import { compact, int, ms, table } from './format.ts'
import type { ProducerThreadData } from './producer-thread.ts'
import { startProgress } from './progress.ts'
import { verify } from './verify.ts'

const usage = 'usage: demo [--items N ≥ 1 (default 2000000)] [--producers N ≥ 0 worker threads (default 2)]'
const { totalItems, producerThreads } = parseFlags()

const dir = mkdtempSync(join(tmpdir(), 'vinequeue-demo-'))
const path = join(dir, 'events.ndjson')
const cleanup = (): void => rmSync(dir, { recursive: true, force: true })
process.once('SIGINT', () => {
  cleanup()
  process.exit(130)
})

// The sender module is imported by the sender pool's threads. A bare package
// name would be resolved from process.cwd(); resolving it here, where it is
// a dependency, and passing the file URL works from any directory.
const senderOptions: FileSenderOptions = { path }
const queue = createQueue({
  sender: { module: import.meta.resolve('@vinequeue/example-file-sender'), options: senderOptions },
  onDeadLetter: ({ items, reason }) => console.error(`\ndead letter: ${items.length} items (${reason})`),
})
queue.on('error', (err) => console.error('\nqueue error:', err))

// Producers: the main thread plus `producerThreads` workers, each with its own share.
const refs = ['main', ...Array.from({ length: producerThreads }, (_, i) => `worker-${i + 1}`)]
const expected = new Map(
  refs.map((ref, i) => [ref, Math.floor(totalItems / refs.length) + (i < totalItems % refs.length ? 1 : 0)]),
)

try {
  await queue.start()
  console.log(
    `VineQueue demo: ${int(totalItems)} events from ${refs.length} producers (main + ${producerThreads} worker threads)`,
  )
  console.log(`sender: @vinequeue/example-file-sender → ${path}\n`)

  const startedAt = performance.now()
  const progress = startProgress(queue, startedAt)
  const workers = refs
    .slice(1)
    .map((ref) => runProducerThread({ handle: queue.producerPort(), ref, count: expected.get(ref)! }))
  await Promise.all([produce(queue, 'main', expected.get('main')!), ...workers])
  const producedAt = performance.now()
  await queue.drain()
  const drainedAt = performance.now()
  const report = await queue.stop()
  progress.stop()

  const m = queue.metrics()
  console.log(`\nfinal metrics\n${table(metricRows(m, producedAt - startedAt, drainedAt - startedAt))}`)
  if (report.undeliveredCount > 0) console.log(`  undelivered at stop: ${int(report.undeliveredCount)}`)

  const result = await verify(path, expected)
  console.log()
  for (const p of result.perProducer) {
    console.log(
      `  ${p.ref.padEnd(9)} expected ${int(p.expected)}  received ${int(p.received)}  missing ${int(p.missing)}`,
    )
  }
  if (result.unexpected > 0) console.log(`  ${int(result.unexpected)} unexpected lines`)
  console.log(
    `verified: ${int(result.total)} items, ${int(result.missing)} missing, ${int(result.duplicated)} duplicated`,
  )
  const ok =
    result.missing === 0 && result.duplicated === 0 && result.unexpected === 0 && result.total === totalItems
  if (!ok) process.exitCode = 1
} catch (err) {
  console.error('\ndemo failed:', err)
  process.exitCode = 1
  await queue.stop({ timeoutMs: 1000 }).catch(() => undefined)
} finally {
  cleanup()
}

function parseFlags(): { totalItems: number; producerThreads: number } {
  try {
    const { values } = parseArgs({
      options: {
        items: { type: 'string', default: '2000000' },
        producers: { type: 'string', default: '2' },
      },
    })
    const totalItems = Number(values.items)
    const producerThreads = Number(values.producers)
    if (
      Number.isSafeInteger(totalItems) &&
      totalItems >= 1 &&
      Number.isSafeInteger(producerThreads) &&
      producerThreads >= 0
    ) {
      return { totalItems, producerThreads }
    }
  } catch (err) {
    console.error((err as Error).message)
  }
  console.error(usage)
  process.exit(2)
}

/** Runs one producer worker (compiled JS beside this file) to completion. */
function runProducerThread(data: ProducerThreadData): Promise<void> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./producer-thread.js', import.meta.url), {
      workerData: data,
      name: `vinequeue-demo-${data.ref}`,
    })
    let done = false
    worker.once('message', () => (done = true))
    worker.once('error', reject)
    worker.once('exit', (code) =>
      done ? resolve() : reject(new Error(`producer ${data.ref} exited with code ${code} before finishing`)),
    )
  })
}

function metricRows(m: Metrics, produceMs: number, totalMs: number): Array<[string, string]> {
  return [
    ['enqueued', int(m.enqueuedTotal)],
    ['sent', int(m.sentTotal)],
    ['batches', int(m.batchesSentTotal)],
    ['errors / retries', `${int(m.errorsTotal)} / ${int(m.retriesTotal)}`],
    ['dropped / dead-lettered', `${int(m.droppedTotal)} / ${int(m.deadLetteredTotal)}`],
    ['send latency avg', ms(m.avgSendLatency)],
    ['send latency p50 / p99', `${ms(m.sendLatencyP50)} / ${ms(m.sendLatencyP99)}`],
    ['producing took', ms(produceMs)],
    ['delivered in', ms(totalMs)],
    ['throughput', `${compact((m.sentTotal * 1000) / totalMs)} items/s`],
  ]
}

/**
 * Question: after `kill -9`, how much does a restart deliver again? A
 * producer process (crash-child/entry.ts: WAL `syncMode: 'always'`, the HTTP
 * sender module, `flush()` every 500 items) posts to a node:http sink in this
 * process, which records every item it receives. The producer is killed
 * with SIGKILL at a random moment (KILL_MS after it started), then a queue
 * on the same WAL, in this process, re-delivers what the log holds to the
 * same sink. An item the sink received before the kill and again after it is
 * a duplicate. Floor, in the same run: the bound the queue promises,
 * maxInFlightBatches × maxBatchSize items per kill (what can be sent or
 * delivered and not yet acknowledged in the log at any moment).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createQueue } from '@vinequeue/core'
import { type Figure, progress } from './report.ts'
import { median } from './stats.ts'

const KILLS = 10
/** Kill moments: uniformly in this range of ms after the producer printed `started`. */
const KILL_MS: readonly [number, number] = [200, 700]
/** The producer's window: the bound is their product. */
const WINDOW = { maxInFlightBatches: 8, maxBatchSize: 1000 } as const
const BOUND = WINDOW.maxInFlightBatches * WINDOW.maxBatchSize
const CHILD = fileURLToPath(new URL('./crash-child/entry.js', import.meta.url))

/** The sink: every item number it received, per phase (before / after the kill). */
class Sink {
  readonly seen: Array<Set<number>> = [new Set(), new Set()]
  /** Items received again in the same phase (a retry within a run: not counted as a crash duplicate). */
  repeats = 0
  phase = 0
  readonly #server: Server

  constructor() {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const seen = this.seen[this.phase]!
        for (const item of JSON.parse(Buffer.concat(chunks).toString('utf8')) as Array<{ n: number }>) {
          if (seen.has(item.n)) this.repeats++
          seen.add(item.n)
        }
        res.writeHead(200).end()
      })
    })
  }

  async listen(): Promise<string> {
    this.#server.listen(0, '127.0.0.1')
    await once(this.#server, 'listening')
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/`
  }

  close(): void {
    this.#server.closeAllConnections()
    this.#server.close()
  }
}

/** Starts the producer and SIGKILLs it `killMs` after it started. */
async function produceAndKill(dir: string, url: string, killMs: number): Promise<void> {
  const child: ChildProcess = spawn(process.execPath, [CHILD, dir, url, '0', JSON.stringify(WINDOW)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  child.stdout!.setEncoding('utf8')
  child.stdout!.on('data', (chunk: string) => {
    if (chunk.includes('started')) setTimeout(() => child.kill('SIGKILL'), killMs).unref()
  })
  const [, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null]
  if (signal !== 'SIGKILL')
    throw new Error(`crash_duplicates: the producer exited (${signal}) before the kill`)
}

/** A queue on the killed producer's WAL re-delivers what it holds to the sink. */
async function redeliver(dir: string, url: string): Promise<void> {
  const q = createQueue({
    sender: { module: import.meta.resolve('@vinequeue/senders/http'), options: { url } },
    wal: { dir },
  })
  await q.start()
  await q.drain()
  const report = await q.stop()
  if (report.walPendingItems !== 0)
    throw new Error(`crash_duplicates: ${report.walPendingItems} items left in the log`)
}

export async function runCrashDuplicates(): Promise<Figure[]> {
  const perKill: number[] = []
  let delivered = 0
  let again = 0
  for (let k = 0; k < KILLS; k++) {
    const sink = new Sink()
    const url = await sink.listen()
    const dir = mkdtempSync(join(tmpdir(), 'vq-bench-crash-'))
    try {
      const killMs = KILL_MS[0] + Math.floor(Math.random() * (KILL_MS[1] - KILL_MS[0] + 1))
      await produceAndKill(join(dir, 'wal'), url, killMs)
      sink.phase = 1
      await redeliver(join(dir, 'wal'), url)
      const [before, after] = sink.seen as [Set<number>, Set<number>]
      let twice = 0
      for (const n of after) if (before.has(n)) twice++
      perKill.push(twice)
      delivered += before.size
      again += twice
      progress(
        `crash_duplicates kill ${k + 1}/${KILLS} at ${killMs} ms: ${before.size} items delivered before, ${after.size} re-delivered, ${twice} of them twice (bound ${BOUND}; ${sink.repeats} repeats within a phase)`,
      )
    } finally {
      sink.close()
      rmSync(dir, { recursive: true, force: true })
    }
  }
  const bound = { name: 'crash_duplicates.in_flight_bound_items', value: BOUND }
  return [
    {
      name: 'crash_duplicates.median_items_per_kill',
      value: median(perKill),
      unit: 'items',
      baseline: bound,
    },
    {
      name: 'crash_duplicates.max_items_per_kill',
      value: Math.max(...perKill),
      unit: 'items',
      baseline: bound,
    },
    {
      name: 'crash_duplicates.share_of_delivered_pct',
      value: delivered === 0 ? 0 : (100 * again) / delivered,
      unit: '%',
    },
  ]
}

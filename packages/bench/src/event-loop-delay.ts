/**
 * Question: how responsive does the producing thread stay while it feeds the
 * queue at full speed?
 *
 * For DURATION_MS the main thread produces as fast as it can: one chunk of
 * CHUNK events per turn of the event loop (`q.enqueueBatch(chunk)` then
 * `await setImmediate()`), while the pipeline and the sender pool deliver to
 * the no-op sender. `perf_hooks.monitorEventLoopDelay` (1 ms resolution)
 * records how late the loop runs its timers meanwhile; the figure is the p99.
 *
 * Baseline: the same loop with a plain in-process array batcher (push each
 * event; at 1000, `JSON.stringify` the batch on this thread and hand the
 * string to a no-op), i.e. batching without a queue. Rounds interleave the
 * two. The items/s each loop reached is reported too: a delay only means
 * something next to the load that caused it.
 *
 * Durable pair, in the same rounds: the queue with the WAL on (syncMode
 * 'always'), beside the naive durable batcher on the producing thread (JSON
 * lines, `writeSync` + `fdatasync` per 1000 events).
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { setTimeout as sleep, setImmediate as yieldToLoop } from 'node:timers/promises'
import { type Queue, QueueFullError } from '@vinequeue/core'
import { type BenchEvent, makeChunks } from './event.ts'
import { startNoopQueue } from './noop-queue.ts'
import { type Figure, progress } from './report.ts'
import { interleave, median, ROUNDS } from './stats.ts'

const DURATION_MS = 2500
const CHUNK = 1000
const BATCH = 1000

interface LoopResult {
  p99Ms: number
  itemsPerS: number
}

/** Runs `produce(chunk)` once per loop turn for DURATION_MS under the delay monitor. */
async function monitored(
  chunks: readonly BenchEvent[][],
  produce: (chunk: BenchEvent[]) => Promise<void> | void,
): Promise<LoopResult> {
  const h = monitorEventLoopDelay({ resolution: 1 })
  let items = 0
  let c = 0
  h.enable()
  const t0 = performance.now()
  const stopAt = t0 + DURATION_MS
  while (performance.now() < stopAt) {
    const chunk = chunks[c++ % chunks.length]!
    await produce(chunk)
    items += chunk.length
    await yieldToLoop()
  }
  const seconds = (performance.now() - t0) / 1000
  h.disable()
  return { p99Ms: h.percentile(99) / 1e6, itemsPerS: items / seconds }
}

export async function runEventLoopDelay(pool: readonly BenchEvent[]): Promise<Figure[]> {
  const chunks = makeChunks(pool, CHUNK, 64)
  const q: Queue = await startNoopQueue()
  const root = mkdtempSync(join(tmpdir(), 'vq-bench-eld-'))
  const walQ: Queue = await startNoopQueue({ wal: { dir: join(root, 'wal'), syncMode: 'always' } })
  const naiveFd = openSync(join(root, 'naive.ndjson'), 'w')
  const queue: LoopResult[] = []
  const batcher: LoopResult[] = []
  const walQueue: LoopResult[] = []
  const naive: LoopResult[] = []
  let naiveLines: string[] = []
  let fullRetries = 0
  const offer = async (target: Queue, chunk: BenchEvent[]): Promise<void> => {
    // Never count a chunk the lane refused: wait briefly and offer it again.
    for (;;) {
      try {
        target.enqueueBatch(chunk)
        return
      } catch (err) {
        if (!(err instanceof QueueFullError)) throw err
        fullRetries++
        await sleep(1)
      }
    }
  }
  // The array batcher's "send": keeps the string reachable so it is not optimised away.
  let sunk = 0
  const sink = (s: string): void => {
    sunk += s.length
  }
  let batch: BenchEvent[] = []
  try {
    await interleave(
      ROUNDS,
      [
        async () => {
          queue.push(await monitored(chunks, (chunk) => offer(q, chunk)))
          await q.drain()
        },
        async () => {
          walQueue.push(await monitored(chunks, (chunk) => offer(walQ, chunk)))
          await walQ.drain()
        },
        async () => {
          naive.push(
            await monitored(chunks, (chunk) => {
              for (const e of chunk) {
                naiveLines.push(JSON.stringify(e))
                if (naiveLines.length === BATCH) {
                  const bytes = Buffer.from(`${naiveLines.join('\n')}\n`)
                  naiveLines = []
                  let done = 0
                  while (done < bytes.byteLength) done += writeSync(naiveFd, bytes, done)
                  fdatasyncSync(naiveFd)
                }
              }
            }),
          )
        },
        async () => {
          batcher.push(
            await monitored(chunks, (chunk) => {
              for (const e of chunk) {
                batch.push(e)
                if (batch.length === BATCH) {
                  sink(JSON.stringify(batch))
                  batch = []
                }
              }
            }),
          )
        },
      ],
      (r) =>
        progress(
          `event loop delay round ${r}/${ROUNDS}: enqueueBatch loop p99 ${queue.at(-1)!.p99Ms.toFixed(2)} ms at ${(queue.at(-1)!.itemsPerS / 1e6).toFixed(2)} M items/s;` +
            ` array batcher p99 ${batcher.at(-1)!.p99Ms.toFixed(2)} ms at ${(batcher.at(-1)!.itemsPerS / 1e6).toFixed(2)} M items/s;` +
            ` WAL queue p99 ${walQueue.at(-1)!.p99Ms.toFixed(2)} ms at ${(walQueue.at(-1)!.itemsPerS / 1e6).toFixed(2)} M items/s;` +
            ` naive fdatasync batcher p99 ${naive.at(-1)!.p99Ms.toFixed(2)} ms at ${(naive.at(-1)!.itemsPerS / 1e6).toFixed(2)} M items/s` +
            (fullRetries > 0 ? ` (lane full ${fullRetries} times so far)` : ''),
        ),
    )
  } finally {
    await q.stop()
    await walQ.stop()
    closeSync(naiveFd)
    rmSync(root, { recursive: true, force: true })
  }
  if (sunk === 0) throw new Error('array batcher produced nothing')
  return [
    {
      name: 'producer.event_loop_delay_p99_ms',
      value: median(queue.map((r) => r.p99Ms)),
      unit: 'ms',
      baseline: {
        name: 'peer.array_batcher.event_loop_delay_p99_ms',
        value: median(batcher.map((r) => r.p99Ms)),
      },
    },
    {
      name: 'producer.wal_always.event_loop_delay_p99_ms',
      value: median(walQueue.map((r) => r.p99Ms)),
      unit: 'ms',
      baseline: {
        name: 'peer.naive_json_fdatasync.event_loop_delay_p99_ms',
        value: median(naive.map((r) => r.p99Ms)),
      },
    },
    {
      name: 'producer.wal_always_loop.items_per_s',
      value: median(walQueue.map((r) => r.itemsPerS)),
      unit: 'items/s',
      baseline: {
        name: 'peer.naive_json_fdatasync_loop.items_per_s',
        value: median(naive.map((r) => r.itemsPerS)),
      },
    },
    {
      name: 'producer.enqueue_batch_loop.items_per_s',
      value: median(queue.map((r) => r.itemsPerS)),
      unit: 'items/s',
      baseline: {
        name: 'peer.array_batcher_loop.items_per_s',
        value: median(batcher.map((r) => r.itemsPerS)),
      },
    },
  ]
}

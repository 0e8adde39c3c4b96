/**
 * Question: how does the queue's end-to-end rate compare with what a Node
 * program would otherwise use to get events off its thread or into batches?
 *
 * Three subjects, each moving E2E_ITEMS events produced the same way (one call
 * per event, CHUNK events per turn of the event loop), interleaved per round:
 *
 * - `peer.thread_stream`: pino's thread-stream (async mode, 4 MiB buffer)
 *   carrying each event as a JSON line (`JSON.stringify(event) + '\n'`,
 *   `stream.write`) to a worker whose destination discards it; the producer
 *   waits for 'drain' when write() returns false. Timed until `flush(cb)`
 *   reports that the worker has consumed everything.
 * - `peer.array_batcher`: a plain in-process batcher (array push; each
 *   1000-item batch `JSON.stringify`ed on the main thread and handed to a
 *   no-op). Timed until the last partial batch is handed over.
 * - `peer.e2e_memory`: VineQueue end to end to the no-op sender, the round of
 *   e2e-memory.ts, measured again here so that it sits in the same rounds as
 *   the peers.
 *
 * Worker and queue start-up happen before the first round and are not timed.
 */
import { once } from 'node:events'
import { setImmediate as yieldToLoop } from 'node:timers/promises'
import ThreadStream from 'thread-stream'
import { CHUNK, E2E_ITEMS, e2eRound, feedArrays } from './e2e-memory.ts'
import { type BenchEvent, POOL_MASK } from './event.ts'
import { startNoopQueue } from './noop-queue.ts'
import { type Figure, progress } from './report.ts'
import { interleave, median, ROUNDS } from './stats.ts'

const BATCH = 1000

async function threadStreamRound(
  stream: ThreadStream,
  pool: readonly BenchEvent[],
  n: number,
): Promise<number> {
  const t0 = performance.now()
  let i = 0
  while (i < n) {
    const end = Math.min(n, i + CHUNK)
    for (; i < end; i++) {
      if (!stream.write(`${JSON.stringify(pool[i & POOL_MASK])}\n`)) await once(stream, 'drain')
    }
    await yieldToLoop()
  }
  await new Promise<void>((resolve, reject) => stream.flush((err) => (err ? reject(err) : resolve())))
  return n / ((performance.now() - t0) / 1000)
}

async function arrayBatcherRound(pool: readonly BenchEvent[], n: number): Promise<number> {
  let sunk = 0
  const sink = (s: string): void => {
    sunk += s.length
  }
  const t0 = performance.now()
  await feedArrays(pool, n, BATCH, (batch) => sink(JSON.stringify(batch)))
  const rate = n / ((performance.now() - t0) / 1000)
  if (sunk === 0) throw new Error('array batcher produced nothing')
  return rate
}

export async function runPeers(pool: readonly BenchEvent[]): Promise<Figure[]> {
  const stream = new ThreadStream({
    filename: new URL('./thread-stream-sink.js', import.meta.url).href,
    bufferSize: 4 * 1024 * 1024,
    sync: false,
  })
  await once(stream, 'ready')
  const q = await startNoopQueue()
  const ts: number[] = []
  const ab: number[] = []
  const vq: number[] = []
  try {
    // Warm-up of every subject, not recorded.
    await threadStreamRound(stream, pool, E2E_ITEMS / 10)
    await arrayBatcherRound(pool, E2E_ITEMS / 10)
    await e2eRound(q, pool, E2E_ITEMS / 10)
    await interleave(
      ROUNDS,
      [
        async () => {
          ts.push(await threadStreamRound(stream, pool, E2E_ITEMS))
        },
        async () => {
          ab.push(await arrayBatcherRound(pool, E2E_ITEMS))
        },
        async () => {
          vq.push(await e2eRound(q, pool, E2E_ITEMS))
        },
      ],
      (r) =>
        progress(
          `peers round ${r}/${ROUNDS}: thread-stream ${(ts.at(-1)! / 1e6).toFixed(2)}, array batcher ${(ab.at(-1)! / 1e6).toFixed(2)}, VineQueue e2e ${(vq.at(-1)! / 1e6).toFixed(2)} M items/s`,
        ),
    )
  } finally {
    await q.stop()
    // end() blocks until the worker has read everything; 'close' follows its exit.
    const closed = once(stream, 'close')
    stream.end()
    await closed
  }
  const threadStream = median(ts)
  const arrayBatcher = median(ab)
  return [
    {
      name: 'peer.thread_stream.items_per_s',
      value: threadStream,
      unit: 'items/s',
      baseline: { name: 'peer.array_batcher.items_per_s', value: arrayBatcher },
    },
    { name: 'peer.array_batcher.items_per_s', value: arrayBatcher, unit: 'items/s' },
    {
      name: 'peer.e2e_memory.items_per_s',
      value: median(vq),
      unit: 'items/s',
      baseline: { name: 'peer.thread_stream.items_per_s', value: threadStream },
    },
  ]
}

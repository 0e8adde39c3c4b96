/**
 * Question: how many items per second go all the way through the queue —
 * encode, ring, pipeline thread, sender pool — when the target costs nothing?
 *
 * A round enqueues N events one `q.enqueue` at a time, in chunks of CHUNK with
 * `await setImmediate()` between chunks (the producer shape shared with the
 * peers in peers.ts), and stops the clock when `await q.drain()` resolves,
 * i.e. when the no-op sender module, run in the pool, has acknowledged every
 * item (checked against `metrics().sentTotal`). The queue is started before
 * the first round (thread start-up is not timed) and reused.
 *
 * Reference: `enqueue.items_per_s` (enqueue.ts), the producer-side ceiling.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises'
import { type Queue, QueueFullError } from '@vinequeue/core'
import { type BenchEvent, POOL_MASK } from './event.ts'
import { startNoopQueue } from './noop-queue.ts'
import { type Figure, progress } from './report.ts'
import { median, ROUNDS } from './stats.ts'

/** Items per round (~100 MB of records through the default 8 MiB lane). */
export const E2E_ITEMS = 1_000_000
/** Items produced between two turns of the event loop. */
export const CHUNK = 1000

/**
 * The producer of every end-to-end round: `n` calls to `q.enqueue`, CHUNK
 * per turn of the event loop. Returns how many items found the lane full and
 * were given to `enqueueAsync` instead (no item is lost or counted twice).
 */
export async function enqueueAll(q: Queue, pool: readonly BenchEvent[], n: number): Promise<number> {
  let waited = 0
  let i = 0
  while (i < n) {
    const end = Math.min(n, i + CHUNK)
    for (; i < end; i++) {
      const item = pool[i & POOL_MASK]
      try {
        q.enqueue(item)
      } catch (err) {
        if (!(err instanceof QueueFullError)) throw err
        waited++
        await q.enqueueAsync(item)
      }
    }
    await yieldToLoop()
  }
  return waited
}

/**
 * The same producer for the peers that batch by hand: `n` events from the
 * pool, CHUNK per turn of the event loop, handed to `hand` in arrays of
 * `batchSize` (the last one shorter). A promise `hand` returns is awaited
 * (an in-flight limit); a plain call is not (no microtask per batch).
 */
export async function feedArrays(
  pool: readonly BenchEvent[],
  n: number,
  batchSize: number,
  hand: (batch: BenchEvent[]) => Promise<void> | void,
): Promise<void> {
  let batch: BenchEvent[] = []
  let i = 0
  while (i < n) {
    const end = Math.min(n, i + CHUNK)
    for (; i < end; i++) {
      batch.push(pool[i & POOL_MASK]!)
      if (batch.length === batchSize) {
        const handed = hand(batch)
        if (handed) await handed
        batch = []
      }
    }
    await yieldToLoop()
  }
  if (batch.length > 0) {
    const handed = hand(batch)
    if (handed) await handed
  }
}

/**
 * One timed end-to-end round: items/s from the first enqueue to the drain.
 * Should the lane ever fill, the item is given to `enqueueAsync` (which waits
 * for room) instead: no item is lost and none counted twice.
 */
export async function e2eRound(q: Queue, pool: readonly BenchEvent[], n: number): Promise<number> {
  const sentBefore = q.metrics().sentTotal
  const t0 = performance.now()
  const waited = await enqueueAll(q, pool, n)
  await q.drain()
  const seconds = (performance.now() - t0) / 1000
  const sent = q.metrics().sentTotal - sentBefore
  if (sent !== n) throw new Error(`e2e round: ${sent} items acknowledged, expected ${n}`)
  if (waited > 0) progress(`  e2e round: the lane was full ${waited} times (those items waited for room)`)
  return n / seconds
}

export async function runE2eMemory(
  pool: readonly BenchEvent[],
  enqueue: Figure | undefined,
): Promise<Figure[]> {
  const q = await startNoopQueue()
  const perRound: number[] = []
  try {
    await e2eRound(q, pool, E2E_ITEMS / 10) // warm-up, not recorded
    for (let r = 1; r <= ROUNDS; r++) {
      perRound.push(await e2eRound(q, pool, E2E_ITEMS))
      const m = q.metrics()
      progress(
        `e2e_memory round ${r}/${ROUNDS}: ${(perRound.at(-1)! / 1e6).toFixed(2)} M items/s (${m.batchesSentTotal} batches so far, send p50 ${m.sendLatencyP50} ms)`,
      )
    }
  } finally {
    await q.stop()
  }
  return [
    {
      name: 'e2e_memory.items_per_s',
      value: median(perRound),
      unit: 'items/s',
      ...(enqueue ? { baseline: { name: enqueue.name, value: enqueue.value } } : {}),
    },
  ]
}

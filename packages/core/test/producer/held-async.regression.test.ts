import { createQueue, QueueFullError } from '@vinequeue/core'
import { expect, it } from 'vitest'
import { valueFor } from '../fixtures/stress-items.mjs'
import { statsBytes, statsViews } from '../fixtures/stress-stats.mjs'

const CHECKING_SENDER = new URL('../fixtures/checking-sender.mjs', import.meta.url)

// A common way to feed a queue: `enqueue`, and `enqueueAsync` (not awaited) for an item that
// finds the lane full. The waiting call holds its encoded item; the packer once handed it a view
// of its buffer, written over by a later pack once an `enqueue` had packed in the lane meanwhile:
// items dead-lettered as undecodable, or delivered as another item.
it('enqueue falling back to enqueueAsync when the lane is full: every item arrives once, intact', async () => {
  const N = 20_000
  const stats = new SharedArrayBuffer(statsBytes(1, N, 1 << 12))
  const s = statsViews(stats, 1, N)
  const q = createQueue({
    sender: { module: CHECKING_SENDER, options: { stats, producers: 1, perProducer: N } },
    senderThreads: 1,
    ringBytes: 64 * 1024,
    maxItemBytes: 1024,
    maxBatchSize: 100,
  })
  await q.start()
  const pause = new Int32Array(new SharedArrayBuffer(4))
  const waiting: Array<Promise<boolean>> = []
  let fallbacks = 0
  try {
    for (let seq = 0; seq < N; seq++) {
      const item = { p: 0, seq, v: valueFor(0, seq) }
      try {
        q.enqueue(item)
      } catch (err) {
        if (!(err instanceof QueueFullError)) throw err
        fallbacks++
        waiting.push(q.enqueueAsync(item))
        // This thread stops (the waiting calls cannot run) while the pipeline and the sender
        // thread drain the lane: the next enqueue packs in the lane again.
        Atomics.wait(pause, 0, 0, 2)
      }
    }
    expect(await Promise.all(waiting)).toEqual(waiting.map(() => true))
    await q.drain()
  } finally {
    await q.stop()
  }
  expect(fallbacks).toBeGreaterThan(10)
  const kinds = {
    undecodable: s.UNDECODABLE,
    badBatch: s.BAD_BATCH,
    badItem: s.BAD_ITEM,
    duplicates: s.DUPLICATES,
  }
  const seen = Object.fromEntries(Object.entries(kinds).map(([k, slot]) => [k, Atomics.load(s.head, slot)]))
  // (Out of order is expected: a waiting call's item lands after later ones.)
  expect({ ...seen, received: Atomics.load(s.head, s.COUNT) }).toEqual({
    undecodable: 0,
    badBatch: 0,
    badItem: 0,
    duplicates: 0,
    received: N,
  })
})

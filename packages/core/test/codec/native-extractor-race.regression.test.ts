import { Worker } from 'node:worker_threads'
import { createQueue, QueueFullError } from '@vinequeue/core'
import { expect, it } from 'vitest'
import { SinkDouble } from '../helpers.ts'

// msgpackr-extract's module init, which runs in every thread that loads it, rewrites a
// token table all threads share: a thread decoding with it meanwhile got map keys and
// strings made of other bytes (numbers intact, no error). Here another thread runs that
// init in a loop while the queue decodes groups and long items, which go through the
// extractor when it is loaded (short single items are decoded in JS either way).
it('decoding is right while another thread loads msgpackr-extract', async () => {
  const stop = new SharedArrayBuffer(4)
  const loader = new Worker(new URL('../fixtures/extractor-init-loop.mjs', import.meta.url), {
    workerData: { stop },
  })
  const inits = new Promise<number>((resolve, reject) => {
    loader.once('message', resolve)
    loader.once('error', reject)
  })
  const sink = new SinkDouble()
  const q = createQueue({ send: sink.send, ringBytes: 1 << 20, maxItemBytes: 4096, flushIntervalMs: 1 })
  await q.start()
  // Numbers of several encodings between the strings: the extractor must skip each correctly.
  const item = (n: number) => ({
    p: n & 3,
    seq: n,
    at: n + 0.5,
    big: 70_000 + n,
    neg: -n,
    v: 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(1 + (n % 5)),
  })
  const sent: unknown[] = []
  try {
    // About 3 s of it: long enough that the old decoder garbled items in every run here.
    const until = performance.now() + 3000
    for (let n = 0; n < 60_000 || performance.now() < until; ) {
      const group = Array.from({ length: 100 }, (_, i) => item(n + i))
      try {
        q.enqueueBatch(group)
      } catch (err) {
        if (!(err instanceof QueueFullError)) throw err
        await q.drain()
        continue
      }
      sent.push(...group)
      n += group.length
      if (n % 5000 === 0) await q.drain()
    }
    await q.drain()
  } finally {
    Atomics.store(new Int32Array(stop), 0, 1)
    await q.stop()
  }
  expect(await inits).toBeGreaterThan(0)
  expect(sink.items.length).toBe(sent.length)
  const wrong = sink.items.flatMap((got, i) =>
    JSON.stringify(got) === JSON.stringify(sent[i]) ? [] : [{ i, got }],
  )
  expect({ wrong: wrong.length, first: wrong.slice(0, 2) }).toEqual({ wrong: 0, first: [] })
})

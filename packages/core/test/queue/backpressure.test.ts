import { BackpressureError, createQueue, type Queue, QueueFullError } from '@vinequeue/core'
import { afterEach, describe, expect, it } from 'vitest'
import { SinkDouble, waitFor } from '../helpers.ts'

// A paused in-thread sender holds the only in-flight batch, so the pipeline
// stops draining and the 4 KiB lane fills: every policy is then observable.
const queues: Queue[] = []
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.stop({ timeoutMs: 500 })))
})

const ITEM = 'x'.repeat(90) // ~96 bytes per record

async function fullQueue(
  policy: string,
  extra: Record<string, unknown> = {},
): Promise<{ q: Queue; sink: SinkDouble; accepted: number }> {
  const sink = new SinkDouble()
  sink.pause()
  const q = createQueue({
    send: sink.send,
    ringBytes: 4096,
    maxItemBytes: 512,
    maxBatchSize: 1,
    maxInFlightBatches: 1,
    flushIntervalMs: 1,
    fullPolicy: policy as any,
    ...extra,
  })
  queues.push(q)
  await q.start()
  // One item goes in flight and blocks; one more fills the open slab.
  q.enqueue({ n: -2, s: ITEM })
  q.enqueue({ n: -1, s: ITEM })
  // Both must have left the lane before it is filled: a pipeline thread slow to
  // take the second (a busy machine) would otherwise free its room later, and
  // the lane would not stay full.
  await waitFor(() => q.metrics().inFlightBatches === 1 && q.metrics().memoryQueueBytes === 0)
  let accepted = 0
  for (let n = 0; n < 200; n++) {
    try {
      if (q.enqueue({ n, s: ITEM })) accepted++
    } catch (err) {
      if (!(err instanceof QueueFullError)) throw err
      break
    }
  }
  return { q, sink, accepted }
}

describe('backpressure policies', () => {
  it("'block': sync enqueue throws QueueFullError at the hard limit; nothing is lost", async () => {
    const { q, sink, accepted } = await fullQueue('block')
    expect(accepted).toBeGreaterThan(10)
    expect(accepted).toBeLessThan(200)
    expect(() => q.enqueue({ n: 999, s: ITEM })).toThrow(QueueFullError)
    expect(q.metrics().rejectedTotal).toBeGreaterThanOrEqual(2)
    expect(q.metrics().droppedTotal).toBe(0)
    sink.resume()
    await q.drain()
    expect(sink.items).toHaveLength(accepted + 2)
  })

  it("'block': enqueueAsync waits for room and succeeds once the sender resumes", async () => {
    const { q, sink, accepted } = await fullQueue('block')
    let done = false
    const p = q.enqueueAsync({ n: 'late', s: ITEM }).then((ok) => {
      done = ok
    })
    await new Promise((r) => setTimeout(r, 50))
    expect(done).toBe(false)
    sink.resume()
    await p
    expect(done).toBe(true)
    await q.drain()
    expect(sink.items).toHaveLength(accepted + 3)
    expect(sink.items.at(-1)).toEqual({ n: 'late', s: ITEM })
  })

  it("'block': enqueueAsync gives up after maxBlockMs with BackpressureError", async () => {
    const { q, sink } = await fullQueue('block', { maxBlockMs: 100 })
    const err = await q.enqueueAsync({ n: 'late', s: ITEM }).catch((e) => e)
    expect(err).toBeInstanceOf(BackpressureError)
    expect(err.waitedMs).toBeGreaterThanOrEqual(100)
    sink.resume()
  })

  it("'reject': throws QueueFullError, async too, without waiting", async () => {
    const { q } = await fullQueue('reject')
    expect(() => q.enqueue({ n: 1, s: ITEM })).toThrow(QueueFullError)
    await expect(q.enqueueAsync({ n: 2, s: ITEM })).rejects.toBeInstanceOf(QueueFullError)
  })

  it("'dropNewest': the new item is dropped (false) and counted", async () => {
    const { q, sink, accepted } = await fullQueue('dropNewest')
    expect(accepted).toBeLessThan(200)
    const m = q.metrics()
    expect(m.droppedByReason.dropNewest).toBe(200 - accepted)
    expect(m.droppedTotal).toBe(200 - accepted)
    expect(
      q.enqueueBatch([
        { a: 1, s: ITEM },
        { a: 2, s: ITEM },
      ]),
    ).toBe(false)
    expect(q.metrics().droppedByReason.dropNewest).toBe(200 - accepted + 2)
    sink.resume()
    await q.drain()
    const ns = sink.items.map((x: any) => x.n)
    expect(ns).toEqual([-2, -1, ...Array(accepted).keys()])
  })

  it("'dropOldest': the oldest queued items are evicted and counted; the newest survive in order", async () => {
    const { q, sink, accepted } = await fullQueue('dropOldest')
    expect(accepted).toBe(200)
    const m = q.metrics()
    expect(m.droppedByReason.dropOldest).toBeGreaterThan(100)
    sink.resume()
    await q.drain()
    const ns = sink.items.map((x: any) => x.n).filter((n: number) => n >= 0)
    expect(ns.length + m.droppedByReason.dropOldest).toBe(200)
    expect(ns.at(-1)).toBe(199)
    expect(ns).toEqual([...ns].sort((a, b) => a - b))
    expect(q.metrics().enqueuedTotal - q.metrics().droppedTotal).toBe(sink.items.length)
  })

  it('the soft limit raises backoffMs, emits a backpressure event and degrades health', async () => {
    const { q, sink } = await fullQueue('block', { softLimit: 0.5, maxBackoffMs: 40 })
    const events: boolean[] = []
    q.on('backpressure', (active) => events.push(active))
    // backoffMs is what producers are slowed by: sync enqueues never are; an async
    // enqueue waiting at the hard limit is.
    expect(q.metrics().backoffMs).toBe(0)
    const waiting = q.enqueueAsync({ n: 'late', s: ITEM })
    expect(q.metrics().backoffMs).toBeGreaterThan(0)
    expect(q.metrics().backoffMs).toBeLessThanOrEqual(40)
    expect(q.health().status).toBe('degraded')
    expect(q.health().reasons.join()).toMatch(/backpressure/)
    sink.resume()
    await waiting
    await q.drain()
    expect(q.metrics().backoffMs).toBe(0)
    await waitFor(() => events.includes(false))
  })
})

import { createQueue, type Queue } from '@vinequeue/core'
import { afterEach, describe, expect, it } from 'vitest'
import { SinkDouble, waitFor } from '../helpers.ts'

const queues: Queue[] = []
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.stop({ timeoutMs: 1000 })))
})

function make(sink: SinkDouble, options: Record<string, unknown>): Queue {
  const q = createQueue({ send: sink.send, maxInFlightBatches: 1, ...options })
  queues.push(q)
  return q
}

describe('batching triggers', () => {
  it('cuts full batches by count', async () => {
    const sink = new SinkDouble()
    const q = make(sink, { maxBatchSize: 100, flushIntervalMs: 60_000 })
    await q.start()
    for (let i = 0; i < 1000; i++) q.enqueue({ i })
    await waitFor(() => sink.items.length === 1000)
    expect(sink.batches).toEqual(new Array(10).fill(100))
    expect(sink.items.map((x: any) => x.i)).toEqual([...Array(1000).keys()])
  })

  it('cuts by bytes', async () => {
    const sink = new SinkDouble()
    // Each item: 4-byte header + 1000-byte raw payload = 1004 bytes; 4 fit in 4096.
    const q = make(sink, { maxBatchSize: 1000, maxBatchBytes: 4096, flushIntervalMs: 60_000 })
    await q.start()
    for (let i = 0; i < 20; i++) q.enqueueRaw(new Uint8Array(1000).fill(i))
    // The last batch is cut by flush(): the pipeline cannot know no 5th item is coming.
    await waitFor(() => sink.items.length === 16)
    await q.flush()
    await waitFor(() => sink.items.length === 20)
    expect(sink.batches).toEqual([4, 4, 4, 4, 4])
    expect((sink.items[7] as Uint8Array)[0]).toBe(7)
  })

  it('takes one item larger than maxBatchBytes as a batch of its own', async () => {
    const sink = new SinkDouble()
    const q = make(sink, { maxBatchBytes: 1024, maxItemBytes: 8192, flushIntervalMs: 60_000 })
    await q.start()
    q.enqueueRaw(new Uint8Array(5000).fill(1))
    q.enqueueRaw(new Uint8Array(10).fill(2))
    await q.flush()
    await waitFor(() => sink.items.length === 2)
    expect(sink.batches).toEqual([1, 1])
  })

  it('sends a partial batch after the linger interval', async () => {
    const sink = new SinkDouble()
    const q = make(sink, { maxBatchSize: 1000, flushIntervalMs: 20 })
    await q.start()
    q.enqueue('a')
    q.enqueue('b')
    await waitFor(() => sink.items.length === 2)
    expect(sink.batches).toEqual([2])
  })

  it('flush() cuts the open batch and resolves once it is handed to the sender', async () => {
    const sink = new SinkDouble()
    const q = make(sink, { maxBatchSize: 1000, flushIntervalMs: 3_600_000 })
    await q.start()
    for (let i = 0; i < 10; i++) q.enqueue(i)
    await q.flush()
    await waitFor(() => sink.items.length === 10)
    expect(sink.batches).toEqual([10])
  })

  it('drain() resolves only after delivery', async () => {
    const sink = new SinkDouble()
    const q = make(sink, { maxBatchSize: 1000, flushIntervalMs: 3_600_000 })
    await q.start()
    sink.pause()
    for (let i = 0; i < 10; i++) q.enqueue(i)
    let drained = false
    const d = q.drain().then(() => {
      drained = true
    })
    await waitFor(() => q.metrics().inFlightBatches === 1)
    expect(drained).toBe(false)
    sink.resume()
    await d
    expect(sink.items).toHaveLength(10)
    expect(q.metrics().sentTotal).toBe(10)
  })

  it('stop() sends the open batch', async () => {
    const sink = new SinkDouble()
    const q = make(sink, { maxBatchSize: 1000, flushIntervalMs: 3_600_000 })
    await q.start()
    for (let i = 0; i < 5; i++) q.enqueue(i)
    const report = await q.stop({ timeoutMs: 5000 })
    expect(report.undeliveredCount).toBe(0)
    expect(report.delivered).toBe(5)
    expect(sink.batches).toEqual([5])
  })

  it('adaptive batching shrinks batches when sends are slow', async () => {
    const sink = new SinkDouble()
    const slow = async (batch: any): Promise<undefined> => {
      await new Promise((r) => setTimeout(r, 30))
      return sink.send(batch)
    }
    const q = createQueue({
      send: slow,
      maxInFlightBatches: 1,
      flushIntervalMs: 1,
      adaptiveBatching: { minBatchSize: 10, maxBatchSize: 400, targetLatencyMs: 5 },
    })
    queues.push(q)
    await q.start()
    // The controller starts at the minimum; slow sends must keep it there.
    for (let i = 0; i < 2000; i++) q.enqueue(i)
    await q.drain()
    expect(q.metrics().batchSize).toBe(10)
    expect(Math.max(...sink.batches)).toBeLessThanOrEqual(10)
  })

  it('adaptive batching grows batches when sends are fast', async () => {
    const sink = new SinkDouble()
    const q = createQueue({
      send: sink.send,
      maxInFlightBatches: 1,
      flushIntervalMs: 1000,
      adaptiveBatching: { minBatchSize: 10, maxBatchSize: 400, targetLatencyMs: 1000 },
    })
    queues.push(q)
    await q.start()
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 400; i++) q.enqueue(i)
      await q.drain()
    }
    expect(q.metrics().batchSize).toBe(400)
    expect(Math.max(...sink.batches)).toBe(400)
  })
})

import { createQueue, PipelineDownError, type Queue, QueueClosedError } from '@vinequeue/core'
import { afterEach, describe, expect, it } from 'vitest'
import { pipelineWorkers } from '../../dist/queue/internals.js'
import { SinkDouble, waitFor } from '../helpers.ts'

const queues: Queue[] = []
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.stop({ timeoutMs: 500 })))
})

function make(options: Record<string, unknown>): Queue {
  const q = createQueue(options as any)
  queues.push(q)
  return q
}

describe('stop()', () => {
  it('delivers everything in memory when the sender keeps up', async () => {
    const sink = new SinkDouble()
    const q = make({ send: sink.send, flushIntervalMs: 60_000, maxBatchSize: 100 })
    await q.start()
    for (let i = 0; i < 1050; i++) q.enqueue(i)
    const report = await q.stop({ timeoutMs: 10_000 })
    expect(report.timedOut).toBe(false)
    expect(report.undeliveredCount).toBe(0)
    expect(report.delivered).toBe(1050)
    expect(sink.items).toEqual([...Array(1050).keys()])
  })

  it('reports what it could not deliver in time, with the items — none dropped silently', async () => {
    const q = make({
      send: async () => {
        throw new Error('target down')
      },
      flushIntervalMs: 5,
      maxBatchSize: 10,
      retryInitialDelayMs: 10,
      maxInFlightBatches: 2,
    })
    await q.start()
    for (let i = 0; i < 95; i++) q.enqueue({ i })
    q.enqueueRaw(new Uint8Array([1, 2, 3]))
    const report = await q.stop({ timeoutMs: 200 })
    expect(report.timedOut).toBe(true)
    expect(report.delivered).toBe(0)
    expect(report.undeliveredCount).toBe(96)
    const items = report.undelivered()
    expect(items).toHaveLength(96)
    const ids = items.filter((x: any) => !(x instanceof Uint8Array)).map((x: any) => x.i)
    expect(new Set(ids)).toEqual(new Set([...Array(95).keys()]))
    expect(items.find((x) => x instanceof Uint8Array)).toEqual(new Uint8Array([1, 2, 3]))
    expect(report.undeliveredBatch.byteLength).toBeGreaterThan(0)
  })

  it('enqueue after stop throws QueueClosedError; stop is idempotent', async () => {
    const sink = new SinkDouble()
    const q = make({ send: sink.send })
    await q.start()
    const first = q.stop()
    expect(() => q.enqueue(1)).toThrow(QueueClosedError)
    expect(() => q.enqueueBatch([1])).toThrow(QueueClosedError)
    expect(() => q.enqueueRaw(new Uint8Array(1))).toThrow(QueueClosedError)
    await expect(q.enqueueAsync(1)).rejects.toBeInstanceOf(QueueClosedError)
    expect(q.stop()).toBe(first)
    await first
    await expect(q.flush()).rejects.toBeInstanceOf(QueueClosedError)
    expect(q.health().status).toBe('down')
  })

  it('stop() before start() reports the items enqueued meanwhile', async () => {
    const q = make({ send: async () => undefined })
    q.enqueue('a')
    q.enqueue('b')
    const report = await q.stop()
    expect(report.undelivered()).toEqual(['a', 'b'])
  })

  it('await using stops the queue at scope exit', async () => {
    const sink = new SinkDouble()
    let q: Queue
    {
      await using queue = createQueue({ send: sink.send, flushIntervalMs: 60_000 })
      q = queue
      await queue.start()
      queue.enqueue('scoped')
    }
    expect(sink.items).toEqual(['scoped'])
    expect(() => q.enqueue('late')).toThrow(QueueClosedError)
  })

  it('a producer thread handle stops working after stop', async () => {
    const q = make({ send: async () => undefined })
    await q.start()
    await q.stop()
    expect(() => q.producerPort()).toThrow(QueueClosedError)
  })
})

describe('pipeline thread death', () => {
  it('puts the queue down with an error event; enqueue throws; stop() returns what was in memory', async () => {
    const sink = new SinkDouble()
    sink.pause()
    const q = make({ send: sink.send, flushIntervalMs: 1, maxBatchSize: 10, maxInFlightBatches: 1 })
    const errors: Error[] = []
    q.on('error', (e) => errors.push(e))
    await q.start()
    for (let i = 0; i < 100; i++) q.enqueue(i)
    await waitFor(() => q.metrics().inFlightBatches === 1)
    const pending = q.drain()
    await pipelineWorkers.get(q)!.terminate()
    await waitFor(() => errors.length === 1)
    expect(errors[0]).toBeInstanceOf(PipelineDownError)
    await expect(pending).rejects.toBeInstanceOf(PipelineDownError)
    expect(q.health()).toEqual({ status: 'down', reasons: ['pipeline thread died'] })
    let err: any
    try {
      q.enqueue(1)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(QueueClosedError)
    expect(err.reason).toBe('down')
    const report = await q.stop()
    // The batch in flight (10), the one cut and waiting (10) and the ring (80):
    // all recovered from shared memory.
    expect(report.undeliveredCount).toBe(100)
    expect(new Set(report.undelivered())).toEqual(new Set([...Array(100).keys()]))
    sink.resume()
  })
})

describe('stop() while start() is in flight', () => {
  it('the queue stays stopped once the pipeline reports ready', async () => {
    const sink = new SinkDouble()
    const q = make({ send: sink.send, flushIntervalMs: 60_000 })
    q.enqueue('before')
    const started = q.start()
    const report = await q.stop({ timeoutMs: 2000 })
    await started
    expect(() => q.enqueue('after')).toThrow(QueueClosedError)
    expect(report.delivered + report.undeliveredCount).toBe(1)
    expect(q.health().status).toBe('down')
  })
})

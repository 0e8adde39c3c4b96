import { type Batch, createQueue, type DeadLetter, type Queue } from '@vinequeue/core'
import { Unpackr } from 'msgpackr'
import { afterEach, describe, expect, it } from 'vitest'
import { SinkDouble } from '../helpers.ts'

// enqueueBatch writes a whole chunk as one group record (one msgpack array).
// Everything downstream must still see single items: counts, order, limits,
// per-item failures and payloads.
const queues: Queue[] = []
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.stop({ timeoutMs: 1000 })))
})

const event = (i: number) => ({ id: i, userId: `user-${i % 7}`, event: 'page_view', data: { n: i } })

describe('enqueueBatch groups', () => {
  it('arrive as single items, in order, cut at maxBatchSize', async () => {
    const sink = new SinkDouble()
    const q = createQueue({ send: sink.send, maxBatchSize: 1000, flushIntervalMs: 60_000 })
    queues.push(q)
    await q.start()
    const items = Array.from({ length: 2500 }, (_, i) => event(i))
    expect(q.enqueueBatch(items)).toBe(true)
    q.enqueue(event(2500))
    await q.drain()
    expect(sink.items).toEqual([...items, event(2500)])
    expect(Math.max(...sink.batches)).toBeLessThanOrEqual(1000)
    const m = q.metrics()
    expect(m.enqueuedTotal).toBe(2501)
    expect(m.sentTotal).toBe(2501)
    expect(m.memoryQueueSize).toBe(0)
  })

  it('expose every item encoded on its own through payloads()', async () => {
    const seen: unknown[] = []
    const unpackr = new Unpackr({ useRecords: false })
    const q = createQueue({
      send: (batch: Batch) => {
        for (const p of batch.payloads()) seen.push(p.raw ? p.bytes : unpackr.unpack(p.bytes))
        return undefined
      },
      flushIntervalMs: 5,
    })
    queues.push(q)
    await q.start()
    q.enqueue('solo')
    q.enqueueBatch([event(1), event(2), 'three', [4]])
    q.enqueueRaw(new Uint8Array([9]))
    await q.drain()
    expect(seen).toEqual(['solo', event(1), event(2), 'three', [4], new Uint8Array([9])])
  })

  it('a failed item inside a group is retried alone; a permanent one is dead-lettered alone', async () => {
    const sink = new SinkDouble()
    const letters: DeadLetter[] = []
    let attempt = 0
    const q = createQueue({
      send: async (batch: Batch) => {
        attempt++
        const items = batch.items() as Array<{ id: number }>
        if (attempt === 1) {
          // Deliver all but #3 (retry) and #5 (permanent).
          sink.items.push(...items.filter((x) => x.id !== 3 && x.id !== 5))
          return {
            failed: [
              { index: items.findIndex((x) => x.id === 3), reason: 'busy' },
              { index: items.findIndex((x) => x.id === 5), retryable: false, reason: 'invalid' },
            ],
          }
        }
        sink.items.push(...items)
        return undefined
      },
      flushIntervalMs: 5,
      retryInitialDelayMs: 1,
      onDeadLetter: (d) => letters.push(d),
    })
    queues.push(q)
    await q.start()
    q.enqueueBatch(Array.from({ length: 40 }, (_, i) => event(i)))
    await q.drain()
    const ids = (sink.items as Array<{ id: number }>).map((x) => x.id).sort((a, b) => a - b)
    expect(ids).toEqual([...Array(40).keys()].filter((i) => i !== 5))
    expect(letters.map((d) => d.items)).toEqual([[event(5)]])
    const m = q.metrics()
    expect(m.sentTotal).toBe(39)
    expect(m.deadLetteredTotal).toBe(1)
  })

  it('a group larger than the adaptive batch size still goes out (as one batch)', async () => {
    const sink = new SinkDouble()
    const q = createQueue({
      send: sink.send,
      flushIntervalMs: 5,
      maxBatchSize: 1000,
      adaptiveBatching: { minBatchSize: 10, maxBatchSize: 1000, targetLatencyMs: 50 },
    })
    queues.push(q)
    await q.start()
    q.enqueueBatch(Array.from({ length: 1000 }, (_, i) => i))
    await q.drain()
    expect(sink.items).toHaveLength(1000)
  })

  it('a chunk too large for one batch is written item by item', async () => {
    const sink = new SinkDouble()
    const q = createQueue({ send: sink.send, flushIntervalMs: 5, maxBatchBytes: 4096, maxItemBytes: 2048 })
    queues.push(q)
    await q.start()
    const items = Array.from({ length: 50 }, (_, i) => ({ i, pad: 'x'.repeat(200) }))
    q.enqueueBatch(items)
    await q.drain()
    expect(sink.items).toEqual(items)
    expect(Math.max(...sink.batches)).toBeLessThan(50)
  })
})

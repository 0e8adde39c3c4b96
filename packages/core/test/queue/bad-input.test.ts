import { createQueue, EncodeError, ItemTooLargeError, type Queue } from '@vinequeue/core'
import { afterEach, describe, expect, it } from 'vitest'
import { SinkDouble } from '../helpers.ts'

const queues: Queue[] = []
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.stop({ timeoutMs: 1000 })))
})

async function started(sink: SinkDouble, extra: Record<string, unknown> = {}): Promise<Queue> {
  const q = createQueue({ send: sink.send, flushIntervalMs: 5, maxItemBytes: 1024, ...extra })
  queues.push(q)
  await q.start()
  return q
}

describe('bad input is a typed error and the queue keeps working', () => {
  const circular: any = { a: 1 }
  circular.self = circular
  const unencodable: Array<[string, unknown]> = [
    ['a circular object', circular],
    ['a BigInt over 64 bits', 2n ** 70n],
    ['a symbol', Symbol('s')],
  ]

  it.each(unencodable)('enqueue(%s) throws EncodeError', async (_name, item) => {
    const sink = new SinkDouble()
    const q = await started(sink)
    q.enqueue({ before: true })
    expect(() => q.enqueue(item)).toThrow(EncodeError)
    q.enqueue({ after: true })
    await q.drain()
    expect(sink.items).toEqual([{ before: true }, { after: true }])
    expect(q.metrics().enqueuedTotal).toBe(2)
  })

  it('an item over maxItemBytes throws ItemTooLargeError with the sizes', async () => {
    const sink = new SinkDouble()
    const q = await started(sink)
    let err: any
    try {
      q.enqueue({ blob: 'x'.repeat(2000) })
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(ItemTooLargeError)
    expect(err.limit).toBe(1024)
    expect(err.size).toBeGreaterThan(1024)
    expect(() => q.enqueueRaw(new Uint8Array(1025))).toThrow(ItemTooLargeError)
    q.enqueue('ok')
    q.enqueueRaw(new Uint8Array(1024))
    await q.drain()
    expect(sink.items).toHaveLength(2)
  })

  it('enqueueBatch is all or nothing: a bad item rejects the whole batch', async () => {
    const sink = new SinkDouble()
    const q = await started(sink)
    expect(() => q.enqueueBatch([1, 2, circular, 4])).toThrow(/index 2/)
    expect(() => q.enqueueBatch([1, 'x'.repeat(5000)])).toThrow(ItemTooLargeError)
    q.enqueueBatch([5, 6])
    await q.drain()
    expect(sink.items).toEqual([5, 6])
  })

  it('enqueueAsync rejects with the same typed errors', async () => {
    const sink = new SinkDouble()
    const q = await started(sink)
    await expect(q.enqueueAsync(circular)).rejects.toBeInstanceOf(EncodeError)
    await expect(q.enqueueAsync('y'.repeat(5000))).rejects.toBeInstanceOf(ItemTooLargeError)
    await q.enqueueAsync('fine')
    await q.drain()
    expect(sink.items).toEqual(['fine'])
  })

  it('enqueueRaw rejects what is not a Uint8Array', async () => {
    const sink = new SinkDouble()
    const q = await started(sink)
    expect(() => q.enqueueRaw('text' as any)).toThrow(TypeError)
    expect(() => q.enqueueBatch('abc' as any)).toThrow(TypeError)
  })

  it('raw items travel as bytes', async () => {
    const sink = new SinkDouble()
    const q = await started(sink)
    q.enqueueRaw(new TextEncoder().encode('{"pre":"encoded"}'))
    q.enqueue({ packed: true })
    await q.drain()
    expect(new TextDecoder().decode(sink.items[0] as Uint8Array)).toBe('{"pre":"encoded"}')
    expect(sink.items[1]).toEqual({ packed: true })
  })
})

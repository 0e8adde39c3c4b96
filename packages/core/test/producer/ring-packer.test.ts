import { createRequire } from 'node:module'
import { createQueue, EncodeError, type Queue, QueueFullError } from '@vinequeue/core'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { SinkDouble } from '../helpers.ts'

// The producer packs straight into the lane when the lane's tail is free and
// into msgpackr's own buffer otherwise (wrapped lane, an item outgrowing the
// tail, enqueueAsync, an encode error midway). Whatever the mix, every item
// must arrive once, in order, intact.
const queues: Queue[] = []
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.stop({ timeoutMs: 1000 })))
})

type Op =
  | { t: 'one'; size: number }
  | { t: 'batch'; sizes: number[] }
  | { t: 'async'; size: number }
  | { t: 'bad' }
  | { t: 'flush' }

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('one' as const), size: fc.nat(6000) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('batch' as const),
      sizes: fc.array(fc.nat(3000), { maxLength: 40 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('async' as const), size: fc.nat(6000) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('bad' as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('flush' as const) }) },
)

describe('packing into the lane', () => {
  it('every item arrives once, in order, intact, whichever buffer it was packed in', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 120 }), async (ops) => {
        const sink = new SinkDouble()
        // A 32 KiB lane: the tail is often shorter than an item, and the lane wraps constantly.
        const q = createQueue({
          send: sink.send,
          ringBytes: 32 * 1024,
          maxItemBytes: 7000,
          flushIntervalMs: 1,
        })
        queues.push(q)
        await q.start()
        const sent: unknown[] = []
        let n = 0
        const item = (size: number) => ({ n: n++, s: 'é'.repeat(size >> 1), tail: size })
        const circular: Record<string, unknown> = {}
        circular.self = circular
        const put = async (fn: () => void, items: unknown[]): Promise<void> => {
          for (;;) {
            try {
              fn()
              sent.push(...items)
              return
            } catch (err) {
              if (!(err instanceof QueueFullError)) throw err
              await q.drain()
            }
          }
        }
        for (const o of ops) {
          if (o.t === 'one') {
            const it = item(o.size)
            await put(() => q.enqueue(it), [it])
          } else if (o.t === 'batch') {
            const items = o.sizes.map(item)
            await put(() => q.enqueueBatch(items), items)
          } else if (o.t === 'async') {
            const it = item(o.size)
            await q.enqueueAsync(it)
            sent.push(it)
          } else if (o.t === 'bad') {
            expect(() => q.enqueue({ n: -1, circular })).toThrow(EncodeError)
            expect(() => q.enqueueBatch([item(10), circular])).toThrow(EncodeError)
          } else await q.flush()
        }
        await q.drain()
        expect(sink.items).toEqual(sent)
        await q.stop()
      }),
      { numRuns: 40, seed: 20261126 },
    )
  })
})

// msgpackr keeps its target buffer and position in module state, one per thread, shared by
// every Packr on it: the producer must never leave it pointing at a lane, nor write over a
// buffer that another packer handed out.
describe("packing into the lane, beside other users of msgpackr's state on the thread", () => {
  const item = (q: number, n: number) => ({ q, n, s: 'abcdefghijklmnopqrstuvwxyz'.repeat(n % 7) })

  /** Retries `fn` after a drain while the lane is full. */
  async function put(q: Queue, fn: () => void): Promise<void> {
    for (;;) {
      try {
        fn()
        return
      } catch (err) {
        if (!(err instanceof QueueFullError)) throw err
        await q.drain()
      }
    }
  }

  it('two queues enqueued to in turn on one thread: each delivers its own items, once, in order, intact', async () => {
    const sinks = [new SinkDouble(), new SinkDouble()]
    const qs = sinks.map((sink) =>
      createQueue({ send: sink.send, ringBytes: 256 * 1024, maxItemBytes: 4096, flushIntervalMs: 1 }),
    )
    queues.push(...qs)
    for (const q of qs) await q.start()
    const N = 20_000
    for (let n = 0; n < N; n++) {
      for (const [k, q] of qs.entries()) await put(q, () => q.enqueue(item(k, n)))
    }
    for (const q of qs) await q.drain()
    for (const [k, sink] of sinks.entries()) {
      expect(sink.items).toEqual(Array.from({ length: N }, (_, n) => item(k, n)))
    }
  })

  it('other code packing with the msgpackr build the queue loads keeps its buffers, the queue its items', async () => {
    // (codec.ts loads msgpackr/index-no-eval.)
    const msgpackr = createRequire(import.meta.url)('msgpackr/index-no-eval') as typeof import('msgpackr')
    const sink = new SinkDouble()
    const q = createQueue({ send: sink.send, ringBytes: 256 * 1024, maxItemBytes: 4096, flushIntervalMs: 1 })
    queues.push(q)
    await q.start()
    const N = 5000
    const kept: Array<[unknown, Uint8Array]> = []
    for (let n = 0; n < N; n++) {
      await put(q, () => q.enqueue(item(0, n)))
      const mine = { app: n, text: 'zyxwvutsrqponmlkjihgfedcba'.repeat(n % 5) }
      kept.push([mine, msgpackr.pack(mine)])
    }
    await q.drain()
    expect(sink.items).toEqual(Array.from({ length: N }, (_, n) => item(0, n)))
    const changed = kept.filter(([value, bytes]) => {
      try {
        return JSON.stringify(msgpackr.unpack(bytes)) !== JSON.stringify(value)
      } catch {
        return true
      }
    })
    expect(changed.length).toBe(0)
  })
})

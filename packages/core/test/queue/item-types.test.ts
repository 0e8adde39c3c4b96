/**
 * What each JavaScript value becomes on its way through the queue (the table
 * in packages/core/README.md, "What an item comes back as"), and what
 * `strictItems` refuses: every value that would not come back as the same
 * data. Each row goes through a real queue and is decoded by the queue's
 * own `batch.items()`.
 */
import { Worker } from 'node:worker_threads'
import { createQueue, EncodeError, InvalidConfigError, type Queue } from '@vinequeue/core'
import { afterEach, describe, expect, it } from 'vitest'
import { SinkDouble } from '../helpers.ts'

const queues: Queue[] = []
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.stop({ timeoutMs: 1000 })))
})

async function started(sink: SinkDouble, strictItems: boolean): Promise<Queue> {
  const q = createQueue({ send: sink.send, flushIntervalMs: 5, strictItems })
  queues.push(q)
  await q.start()
  return q
}

class Point {
  x = 1
  y = 2
}
const circular: Record<string, unknown> = { a: 1 }
circular.self = circular

/** [what, value, what it comes back as]: the same data, accepted by strictItems. */
const same: ReadonlyArray<readonly [string, unknown, unknown]> = [
  ['a string', 'text', 'text'],
  ['a number', 1.5, 1.5],
  ['NaN', Number.NaN, Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY],
  ['-0 (back as 0: equal under ===)', -0, 0],
  ['a boolean', true, true],
  ['null', null, null],
  ['undefined', undefined, undefined],
  ['a property holding undefined', { a: undefined }, { a: undefined }],
  ['a BigInt within 64 bits', 2n ** 63n, 2n ** 63n],
  ['a plain object', { a: { b: [1, 'x'] } }, { a: { b: [1, 'x'] } }],
  [
    'a null-prototype object (back with Object.prototype)',
    Object.assign(Object.create(null), { a: 1 }),
    { a: 1 },
  ],
  // biome-ignore lint/suspicious/noSparseArray: the hole is the point
  ['an array hole (back as undefined)', [, 1], [undefined, 1]],
  ['a Date', new Date(1_700_000_000_123), new Date(1_700_000_000_123)],
  ['a Uint8Array', new Uint8Array([1, 2]), new Uint8Array([1, 2])],
  ['a Buffer (back as a Uint8Array of the same bytes)', Buffer.from([3]), new Uint8Array([3])],
]

/** [what, value, what it comes back as, strictItems' message]: changed on the way, refused by strictItems. */
const changed: ReadonlyArray<readonly [string, unknown, unknown, RegExp]> = [
  ['a function', () => 1, undefined, /the item is a function \(comes back as undefined\)/],
  ['a method', { a: { f() {} } }, { a: { f: undefined } }, /item\.a\.f is a function/],
  ['a Map with string keys', new Map([['a', 1]]), { a: 1 }, /the item is a Map/],
  [
    'a Map with number keys',
    new Map([[1, 'a']]),
    { 1: 'a' },
    /a Map \(comes back as a plain object, keys as strings\)/,
  ],
  ['a Set', new Set([1, 2]), [1, 2], /a Set \(comes back as an array\)/],
  [
    'an Int16Array',
    new Int16Array([1, 2]),
    new Uint8Array([1, 0, 2, 0]),
    /an? Int16Array \(comes back as a Uint8Array of its bytes/,
  ],
  [
    'an ArrayBuffer',
    new Uint8Array([7]).buffer,
    new Uint8Array([7]),
    /ArrayBuffer \(comes back as a Uint8Array of its bytes/,
  ],
  ['a RegExp', /a+/g, ['a+', 'g'], /a RegExp \(comes back as \[source, flags\]\)/],
  ['an Error', new TypeError('boom'), ['TypeError', 'boom', undefined], /an Error/],
  [
    'a "__proto__" key',
    JSON.parse('{"__proto__":1}'),
    { __proto_: 1 },
    /item\["__proto__"\] is a "__proto__" key/,
  ],
  ['a class instance', { p: new Point() }, { p: { x: 1, y: 2 } }, /item\.p is an instance of Point/],
  [
    'an object with toJSON()',
    [new URL('http://x/')],
    ['http://x/'],
    /item\[0\] is an instance of URL \(comes back as what its toJSON\(\) returns\)/,
  ],
  ['a boxed string', new String('ab'), { 0: 'a', 1: 'b' }, /an instance of String/],
]

describe('non-strict (default): values come back as the table says', () => {
  it.each([...same, ...changed.map(([what, value, back]) => [what, value, back] as const)])(
    '%s',
    async (_what, value, back) => {
      const sink = new SinkDouble()
      const q = await started(sink, false)
      expect(q.enqueue(value)).toBe(true)
      await q.drain()
      expect(sink.items).toHaveLength(1)
      expect(sink.items[0]).toStrictEqual(back)
    },
  )
})

describe('strictItems: true', () => {
  it.each(same)('accepts %s', async (_what, value, back) => {
    const sink = new SinkDouble()
    const q = await started(sink, true)
    q.enqueue(value)
    q.enqueueBatch([value, value])
    await q.enqueueAsync(value)
    await q.drain()
    expect(sink.items).toStrictEqual([back, back, back, back])
  })

  it.each(changed)('refuses %s (EncodeError, nothing enqueued)', async (_what, value, _back, why) => {
    const sink = new SinkDouble()
    const q = await started(sink, true)
    expect(() => q.enqueue(value)).toThrow(EncodeError)
    expect(() => q.enqueue(value)).toThrow(why)
    expect(() => q.enqueueBatch(['fine', value])).toThrow(/at index 1/)
    await expect(q.enqueueAsync(value)).rejects.toThrow(EncodeError)
    q.enqueue('after')
    await q.drain()
    expect(sink.items).toEqual(['after'])
    expect(q.metrics().enqueuedTotal).toBe(1)
  })

  it('refuses circular items and symbols, as without it', async () => {
    const q = await started(new SinkDouble(), true)
    expect(() => q.enqueue(circular)).toThrow(/more than 1000 levels deep \(or circular\)/)
    expect(() => q.enqueue({ s: Symbol('s') })).toThrow(EncodeError)
  })

  it('applies on producer threads too', async () => {
    const sink = new SinkDouble()
    const q = await started(sink, true)
    const worker = new Worker(
      `const { parentPort } = require('node:worker_threads')
       parentPort.once('message', async (handle) => {
         const { connectProducer } = await import('@vinequeue/core')
         const p = connectProducer(handle)
         let code
         try { p.enqueue({ tags: new Set(['a']) }) } catch (err) { code = err.code + ': ' + err.message }
         p.enqueue({ ok: true })
         p.close()
         parentPort.postMessage(code)
       })`,
      { eval: true },
    )
    const code = await new Promise((resolve, reject) => {
      worker.once('message', resolve)
      worker.once('error', reject)
      worker.postMessage(q.producerPort())
    })
    await worker.terminate()
    expect(code).toMatch(/^VQ_ENCODE: .*item\.tags is a Set/)
    await q.drain()
    expect(sink.items).toEqual([{ ok: true }])
  })

  it('is validated like every option', () => {
    let err: unknown
    try {
      createQueue({ send: async () => {}, strictItems: 'yes' as never })
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(InvalidConfigError)
    expect((err as InvalidConfigError).issues).toContain('strictItems: must be a boolean (got "yes")')
    expect(createQueue({ send: async () => {} }).options.strictItems).toBe(false)
  })
})

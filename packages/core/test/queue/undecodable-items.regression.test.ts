/**
 * Items no thread can decode used to poison the queue: their batch was
 * retried forever (4 of them filled every send slot; 0 of 1000 good items
 * arrived), `stop().undelivered()` threw, a WAL kept them across restarts,
 * and dead-lettering them (finite maxAttempts / maxRetryAgeMs) threw an
 * uncaught exception on the queue's thread (exit 1).
 *
 * Now: what msgpack writes but the queue's decoder refused (a Map with an
 * object key) decodes, as a Map; what is too deep to decode is refused at
 * enqueue (EncodeError, nothing written); and what still cannot be decoded
 * (here: written to the WAL by an older version or another writer) is
 * dead-lettered alone with its raw bytes while the rest of its batch is
 * delivered.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import {
  createQueue,
  type DeadLetter,
  EncodeError,
  type Queue,
  type QueueOptions,
  UndecodableItem,
} from '@vinequeue/core'
import { WriteAheadLog } from '@vinequeue/wal'
import { afterEach, describe, expect, it } from 'vitest'
import { createPackr } from '../../src/codec/codec.ts'
import { readLines, recordingSender, SinkDouble, tempDir, waitFor } from '../helpers.ts'

const answerSender = new URL('../fixtures/answer-sender.mjs', import.meta.url)
const deepProducer = new URL('../fixtures/deep-producer.mjs', import.meta.url)

const queues: Queue[] = []
const cleanups: Array<() => void> = []
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.stop({ timeoutMs: 2000 })))
  for (const c of cleanups.splice(0)) c()
})

function started(options: QueueOptions): Promise<Queue> {
  const q = createQueue(options)
  queues.push(q)
  return q.start().then(() => q)
}

function scratch(): string {
  const { dir, cleanup } = tempDir()
  cleanups.push(cleanup)
  return dir
}

function nested(depth: number): unknown {
  let value: unknown = { leaf: 1 }
  for (let i = 1; i < depth; i++) value = { a: value }
  return value
}

describe('a Map with non-string keys', () => {
  it('is delivered as a Map, and 4 of them beside 1000 good items hold up nothing', async () => {
    const sink = new SinkDouble()
    const q = await started({
      send: sink.send,
      maxBatchSize: 10,
      maxInFlightBatches: 4,
      flushIntervalMs: 5,
      retryInitialDelayMs: 5,
      retryMaxDelayMs: 20,
    })
    for (let k = 0; k < 4; k++) {
      expect(q.enqueue(new Map<unknown, unknown>([[{ k }, 'v']]))).toBe(true)
      await q.flush()
    }
    for (let i = 0; i < 1000; i++) q.enqueue({ i })
    await waitFor(() => sink.items.length >= 1004, 10_000)
    const maps = sink.items.filter((x) => x instanceof Map) as Array<Map<unknown, unknown>>
    expect(maps.map((m) => [...m])).toEqual([0, 1, 2, 3].map((k) => [[{ k }, 'v']]))
    expect(sink.items.filter((x) => !(x instanceof Map))).toEqual(
      Array.from({ length: 1000 }, (_, i) => ({ i })),
    )
    expect(q.metrics().retriesTotal).toBe(0)
  })

  it('inside an item and inside an enqueueBatch, through the sender pool', async () => {
    const file = join(scratch(), 'delivered.ndjson')
    const q = await started({ sender: { module: recordingSender, options: { file } }, senderThreads: 1 })
    q.enqueue({ i: 0, m: new Map<unknown, unknown>([[[1, 2], 'pair']]) })
    q.enqueueBatch([{ i: 1 }, { i: 2, m: new Map<unknown, unknown>([[{ k: 1 }, 'v']]) }, { i: 3 }])
    await q.drain()
    // JSON lines: a Map is written as {}; what matters is that every item arrived once.
    expect(readLines<{ i: number }>(file).map((x) => x.i)).toEqual([0, 1, 2, 3])
    expect(q.metrics().retriesTotal).toBe(0)
  })
})

describe('an item nested too deep to decode is refused at enqueue', () => {
  function fromWorker(q: Queue, depth: number) {
    const worker = new Worker(deepProducer)
    return new Promise<Record<string, { code?: string; message?: string; returned?: unknown }>>(
      (resolve, reject) => {
        worker.once('message', resolve)
        worker.once('error', reject)
        worker.postMessage({ handle: q.producerPort(), depth })
      },
    ).finally(() => worker.terminate())
  }

  it('from a producer worker thread (whose stack encodes 3000 levels the main thread cannot decode)', async () => {
    const sink = new SinkDouble()
    const q = await started({ send: sink.send, flushIntervalMs: 5 })
    for (const depth of [3000, 1001]) {
      const results = await fromWorker(q, depth)
      for (const call of ['enqueue', 'enqueueBatch', 'enqueueAsync'] as const) {
        expect(results[call]!.code, call).toBe('VQ_ENCODE')
        expect(results[call]!.message, call).toMatch(/more than 1000 levels deep/)
      }
      expect(results.enqueueBatch!.message).toMatch(/at index 1/)
      expect(results.after!.returned).toBe(true)
    }
    await q.drain()
    // All or nothing: the batch's first item was not written either.
    expect(sink.items).toEqual([{ after: true }, { after: true }])
    expect(q.metrics().enqueuedTotal).toBe(2)
  })

  it('from a producer worker thread, 1000 levels are taken and delivered (the main thread decodes them)', async () => {
    const sink = new SinkDouble()
    const q = await started({ send: sink.send, flushIntervalMs: 5 })
    const results = await fromWorker(q, 1000)
    for (const call of ['enqueue', 'enqueueBatch', 'enqueueAsync', 'after'] as const) {
      expect(results[call]!.returned, call).toBe(true)
    }
    await q.drain()
    expect(sink.items).toEqual([nested(1000), { before: true }, nested(1000), nested(1000), { after: true }])
  })

  it("on the main thread, msgpackr's own encoder stops first (EncodeError), below what every thread decodes", async () => {
    const sink = new SinkDouble()
    const q = await started({ send: sink.send, flushIntervalMs: 5 })
    expect(() => q.enqueue(nested(3000))).toThrow(EncodeError)
    expect(() => q.enqueueBatch([1, 2, [nested(3000)]])).toThrow(/at index 2/)
    q.enqueue(nested(900))
    q.enqueueBatch([nested(900), 'x'])
    await q.drain()
    expect(sink.items).toEqual([nested(900), nested(900), 'x'])
    expect(q.metrics().enqueuedTotal).toBe(3)
  })
})

/** msgpack of `{ a: { a: … 1 } }`, `levels` maps deep: built flat, decodable by no thread (~11,000 levels fit 4 MB). */
function deepBytes(levels: number): Uint8Array {
  const out = new Uint8Array(levels * 3 + 1)
  for (let i = 0; i < levels; i++) out.set([0x81, 0xa1, 0x61], i * 3)
  out[levels * 3] = 0x01
  return out
}

/** msgpack fixext 1 of an extension type msgpackr does not know: valid framing, undecodable. */
const UNKNOWN_EXTENSION = new Uint8Array([0xd4, 0x05, 0x00])

/** Frames records the way the ring does (u32 LE length | flags, payload, pad to 4). */
function frame(records: ReadonlyArray<{ payload: Uint8Array; group?: boolean }>): Uint8Array {
  const size = (n: number): number => 4 + ((n + 3) & ~3)
  const out = new Uint8Array(records.reduce((s, r) => s + size(r.payload.byteLength), 0))
  const view = new DataView(out.buffer)
  let at = 0
  for (const r of records) {
    view.setUint32(at, (r.payload.byteLength | (r.group ? 0x80000000 : 0)) >>> 0, true)
    out.set(r.payload, at + 4)
    at += size(r.payload.byteLength)
  }
  return out
}

/** A group record (enqueueBatch) of already-encoded elements. */
function group(elements: readonly Uint8Array[]): { payload: Uint8Array; group: true } {
  const body = elements.reduce((s, e) => s + e.byteLength, 0)
  const payload = new Uint8Array(4 + 1 + body)
  new DataView(payload.buffer).setUint32(0, elements.length, true)
  payload[4] = 0x90 | elements.length
  let at = 5
  for (const e of elements) {
    payload.set(e, at)
    at += e.byteLength
  }
  return { payload, group: true }
}

const packr = createPackr()
const pack = (v: unknown): Uint8Array => packr.pack(v).slice()
const DEEP = deepBytes(50_000)

/**
 * Writes a WAL holding one batch of 6 items: { i: 0 }, the deep item, { i: 1 },
 * then a group of [{ i: 2 }, the unknown extension, { i: 3 }] — as an older
 * version (which took such items) or another writer could have left it.
 */
function poisonedWal(): string {
  const dir = join(scratch(), 'wal')
  const wal = WriteAheadLog.open(dir)
  wal.append(
    frame([
      { payload: pack({ i: 0 }) },
      { payload: DEEP },
      { payload: pack({ i: 1 }) },
      group([pack({ i: 2 }), UNKNOWN_EXTENSION, pack({ i: 3 })]),
    ]),
    6,
  )
  wal.close()
  return dir
}

function expectUndecodable(items: readonly unknown[]): void {
  const bad = items.filter((x) => x instanceof UndecodableItem) as UndecodableItem[]
  expect(bad.some((b) => Buffer.from(b.raw).equals(Buffer.from(DEEP)))).toBe(true)
  expect(bad.map((b) => [...b.raw])).toContainEqual([...UNKNOWN_EXTENSION])
  expect(bad.map((b) => b.decodeError).join(' | ')).toMatch(/Maximum call stack size exceeded/)
  expect(bad.map((b) => b.decodeError).join(' | ')).toMatch(/Unknown extension/)
  expect(bad).toHaveLength(2)
}

describe('an undecodable item that slipped through (here: in the WAL)', () => {
  const senders = {
    'in-thread send': () => {
      const sink = new SinkDouble()
      return { options: { send: sink.send } as QueueOptions, delivered: () => sink.items }
    },
    'sender pool': () => {
      const file = join(scratch(), 'delivered.ndjson')
      return {
        options: { sender: { module: recordingSender, options: { file } }, senderThreads: 1 } as QueueOptions,
        delivered: () => readLines(file),
      }
    },
  }

  it.each(Object.keys(senders))(
    '%s: the other items are delivered, it is dead-lettered with its raw bytes, and the WAL lets it go',
    async (which) => {
      const dir = poisonedWal()
      const { options, delivered } = senders[which as keyof typeof senders]()
      const deadLetters: DeadLetter[] = []
      const q = await started({
        ...options,
        wal: { dir },
        retryInitialDelayMs: 5,
        onDeadLetter: (d) => deadLetters.push(d),
      })
      await waitFor(() => delivered().length >= 4 && deadLetters.length > 0, 10_000)
      await q.drain()
      expect(delivered()).toEqual([0, 1, 2, 3].map((i) => ({ i })))
      const dead = deadLetters.flatMap((d) => d.items)
      expectUndecodable(dead)
      expect(deadLetters.map((d) => d.reason).join(' ')).toMatch(/the item cannot be decoded/)
      expect(q.metrics().deadLetteredTotal).toBe(2)
      expect(q.metrics().sentTotal).toBe(4)
      const report = await q.stop()
      expect(report.walPendingItems).toBe(0)

      // A restart re-delivers nothing: the log did not keep it.
      const again = senders[which as keyof typeof senders]()
      const q2 = await started({ ...again.options, wal: { dir } })
      await q2.drain()
      expect(again.delivered()).toEqual([])
      expect((await q2.stop()).walPendingItems).toBe(0)
    },
  )

  it('stop().undelivered() hands it back as raw bytes instead of throwing', async () => {
    const dir = poisonedWal()
    let sending = false
    const q = await started({
      // A send that never settles: the batch is still in flight at stop().
      send: () => {
        sending = true
        return new Promise(() => {})
      },
      wal: { dir },
    })
    await waitFor(() => sending)
    const report = await q.stop({ timeoutMs: 200 })
    expect(report.undeliveredCount).toBe(6)
    const items = report.undelivered()
    expect(items.filter((x) => !(x instanceof UndecodableItem))).toEqual([0, 1, 2, 3].map((i) => ({ i })))
    expectUndecodable(items)
    expect(report.walPendingItems).toBe(6)
  })
})

describe('dead-lettering an undecodable item (finite maxAttempts) does not crash the process', () => {
  const blind = {
    'in-thread send': (): QueueOptions => ({
      send: () => {
        throw new Error('target down (the batch was not read)')
      },
    }),
    'sender pool': (): QueueOptions => ({
      sender: { module: answerSender, options: { mode: 'throw-blind' } },
      senderThreads: 1,
    }),
  }

  it.each(Object.keys(blind))(
    '%s: onDeadLetter and the dead-letter file get it as { raw, decodeError } / { raw, error }',
    async (which) => {
      const dir = poisonedWal()
      const deadLetterFile = join(scratch(), 'dead.ndjson')
      const deadLetters: DeadLetter[] = []
      const errors: Error[] = []
      const q = await started({
        ...blind[which as keyof typeof blind](),
        wal: { dir },
        maxAttempts: 2,
        retryInitialDelayMs: 5,
        deadLetterFile,
        onDeadLetter: (d) => deadLetters.push(d),
      })
      q.on('error', (err) => errors.push(err))
      await waitFor(() => deadLetters.length > 0, 10_000)
      await q.drain()
      expect(q.health().status).not.toBe('down')
      const items = deadLetters.flatMap((d) => d.items)
      expect(items.filter((x) => !(x instanceof UndecodableItem))).toEqual([0, 1, 2, 3].map((i) => ({ i })))
      expectUndecodable(items)
      expect(deadLetters[0]!.reason).toMatch(/gave up after 2 attempts/)

      const lines = readFileSync(deadLetterFile, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
      expect(lines).toHaveLength(6)
      const raw = lines.filter((l) => l.item?.raw !== undefined).map((l) => l.item)
      expect(raw.map((r) => r.raw).sort()).toEqual(
        [Buffer.from(DEEP).toString('base64'), Buffer.from(UNKNOWN_EXTENSION).toString('base64')].sort(),
      )
      for (const r of raw) expect(r.error).toMatch(/Maximum call stack size exceeded|Unknown extension/)
      expect(lines.filter((l) => l.item?.raw === undefined).map((l) => l.item)).toEqual(
        [0, 1, 2, 3].map((i) => ({ i })),
      )
      expect(errors).toEqual([])
    },
  )
})

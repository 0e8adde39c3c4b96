import { createQueue, type DeadLetter } from '@vinequeue/core'
import { supportedCompressions } from '@vinequeue/senders/kafka'
import { describe, expect, it } from 'vitest'
import { ApiKeys } from './kafka-broker/index.ts'
import { expectEachOnce, json, type ReadRecord, SENDER, text, useTarget } from './kafka-target.ts'

// Delivery through a real queue, the sender loaded by package name from dist
// (build first: `cd packages/senders && npx tsc -p tsconfig.build.json`),
// against the in-process broker stand-in (test/kafka-broker) — or, when
// VINEQUEUE_KAFKA_BROKERS is set, against that cluster, read back with the
// client's Consumer. Fault injection needs the stand-in: kafka-failures.test.ts.
const h = useTarget()

describe('Kafka sender delivery', () => {
  it('delivers every item once as JSON, with its key and the static headers, exactly as sent', async () => {
    const topic = await h.target.topic(3)
    const bin = new Uint8Array([0, 1, 2, 255])
    const q = h.queue({ topic, key: 'user', headers: { source: 'vinequeue-test', bin } })
    await q.start()
    const N = 300
    for (let id = 0; id < N; id++) q.enqueue({ id, user: `user-${id % 7}`, text: 'ünïcode ✓' })
    await q.drain()

    const records = await h.target.read(topic, N)
    expectEachOnce(records, N)
    const partitionOfKey = new Map<string, number>()
    for (const r of records) {
      const item = json(r)
      expect(item).toEqual({ id: item.id, user: `user-${item.id % 7}`, text: 'ünïcode ✓' })
      expect(text(r.key)).toBe(item.user)
      expect(r.headers.map(([k, v]) => [k, v && [...v]])).toEqual([
        ['source', [...Buffer.from('vinequeue-test')]],
        ['bin', [0, 1, 2, 255]],
      ])
      // One key, one partition.
      expect(partitionOfKey.get(item.user) ?? r.partition).toBe(r.partition)
      partitionOfKey.set(item.user, r.partition)
    }
    const m = q.metrics()
    expect(m.sentTotal).toBe(N)
    expect(m.deadLetteredTotal).toBe(0)
  })

  it('keeps the order of same-key items on their partition across batches (maxInFlightBatches 1)', async () => {
    const topic = await h.target.topic(3)
    const q = h.queue({ topic, key: 'k' }, { maxBatchSize: 40, maxInFlightBatches: 1 })
    await q.start()
    const N = 600
    for (let id = 0; id < N; id++) q.enqueue({ id, k: `key-${id % 4}`, seq: Math.floor(id / 4) })
    await q.drain()

    const records = await h.target.read(topic, N)
    expectEachOnce(records, N)
    // `records` is in partition/offset order: each key's items must come in enqueue order.
    const byKey = new Map<string, number[]>()
    for (const r of records) {
      const { k, seq } = json(r)
      byKey.set(k, [...(byKey.get(k) ?? []), seq])
    }
    expect([...byKey.keys()].sort()).toEqual(['key-0', 'key-1', 'key-2', 'key-3'])
    for (const seqs of byKey.values()) expect(seqs).toEqual([...Array(N / 4).keys()])
    expect(q.metrics().batchesSentTotal).toBeGreaterThan(1)
  })

  it("sends the queue's msgpack bytes as they are with value 'msgpack', and raw items verbatim", async () => {
    const topic = await h.target.topic(1)
    const q = h.queue({ topic, value: 'msgpack' })
    await q.start()
    for (let id = 0; id < 20; id++) q.enqueue({ id })
    q.enqueueRaw(new TextEncoder().encode('raw ✓'))
    await q.drain()

    const records = await h.target.read(topic, 21)
    expect(records).toHaveLength(21)
    const values = records.map((r) => [...r.value!])
    // { id: n } as the queue's msgpackr encodes it: map16 (1 entry), fixstr "id", positive fixint n.
    for (let id = 0; id < 20; id++) expect(values).toContainEqual([0xde, 0x00, 0x01, 0xa2, 0x69, 0x64, id])
    expect(values).toContainEqual([...new TextEncoder().encode('raw ✓')])
    expect(records.every((r) => r.key === null && r.headers.length === 0)).toBe(true)
  })

  it('offers every Kafka codec, zstd included, on every supported Node', () => {
    expect(supportedCompressions).toEqual(['none', 'gzip', 'snappy', 'lz4', 'zstd'])
  })

  // A fixed list: a codec that went missing from supportedCompressions fails here instead of being skipped.
  it.each(['gzip', 'snappy', 'lz4', 'zstd'] as const)(
    'compresses record batches with %s',
    async (compression) => {
      const topic = await h.target.topic(2)
      const q = h.queue({ topic, compression, key: 'k' })
      await q.start()
      const N = 250
      for (let id = 0; id < N; id++) q.enqueue({ id, k: `k${id % 3}`, pad: 'abcdefgh'.repeat(20) })
      await q.drain()

      const records = await h.target.read(topic, N)
      expectEachOnce(records, N)
      for (const r of records) expect(json(r).pad).toBe('abcdefgh'.repeat(20))
      if (!h.target.real) expect(new Set(records.map((r) => r.compression))).toEqual(new Set([compression]))
    },
  )

  it('produces with acks 0 (no response awaited)', async () => {
    const topic = await h.target.topic(1)
    const q = h.queue({ topic, acks: 0 })
    await q.start()
    for (let id = 0; id < 50; id++) q.enqueue({ id })
    await q.drain()
    // drain() resolved once the request was written: the broker may still be reading it.
    let records: ReadRecord[] = []
    for (let i = 0; i < (h.target.real ? 1 : 200) && records.length < 50; i++) {
      records = await h.target.read(topic, 50)
      if (records.length < 50) await new Promise((r) => setTimeout(r, 10))
    }
    expectEachOnce(records, 50)
  })

  it('produces idempotently: a producer id and gap-free sequence numbers on every batch', async () => {
    const topic = await h.target.topic(2)
    const q = h.queue({ topic, idempotent: true, key: 'k' }, { maxBatchSize: 30 })
    await q.start()
    for (let id = 0; id < 200; id++) q.enqueue({ id, k: `k${id % 5}` })
    await q.drain()
    expectEachOnce(await h.target.read(topic, 200), 200)
    if (h.target.broker) {
      // The stand-in answers a sequence gap with OUT_OF_ORDER_SEQUENCE_NUMBER,
      // which would have dead-lettered items.
      expect(h.target.broker.requestsOf(ApiKeys.INIT_PRODUCER_ID)).toHaveLength(1)
      expect(new Set(h.target.broker.recordsOf(topic).map((r) => r.producerId))).toEqual(new Set([1000n]))
    }
    expect(q.metrics().deadLetteredTotal).toBe(0)
  })

  it('dead-letters items that cannot become a message, and delivers the rest', async () => {
    const topic = await h.target.topic(1)
    const letters: DeadLetter[] = []
    const q = h.queue({ topic, key: 'k' }, { onDeadLetter: (d) => letters.push(d) })
    await q.start()
    q.enqueueBatch([
      { id: 0, k: 'a' },
      { id: 1, big: 1n },
      { id: 2, k: true },
      { id: 3, k: 7 },
    ])
    await q.drain()

    const records = await h.target.read(topic, 2)
    expect(records.map((r) => [json(r).id, text(r.key)])).toEqual([
      [0, 'a'],
      [3, '7'],
    ])
    expect(letters.flatMap((d) => d.items)).toEqual([
      { id: 1, big: 1n },
      { id: 2, k: true },
    ])
    expect(letters.map((d) => d.reason).join('\n')).toMatch(/not JSON-serializable/)
    expect(q.metrics().deadLetteredTotal).toBe(2)
  })

  it('rejects bad options when the queue starts, naming every bad field', async () => {
    const q = createQueue({
      sender: {
        module: SENDER,
        options: {
          brokers: ['no port:x'],
          topic: 'bad topic',
          acks: 2,
          compression: 'brotli',
          colour: 'red',
        },
      },
    })
    h.track(q)
    const started = q.start()
    await expect(started).rejects.toThrow(/brokers: "no port:x" is not 'host' or 'host:port'/)
    await expect(started).rejects.toThrow(/topic: must be 1 to 249 characters/)
    await expect(started).rejects.toThrow(/acks: must be -1/)
    await expect(started).rejects.toThrow(
      /compression: must be one of none, gzip, snappy, lz4, zstd \(got "brotli"\)/,
    )
    await expect(started).rejects.toThrow(/colour: unknown option/)
  })
})

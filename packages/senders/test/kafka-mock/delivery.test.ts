import { createQueue, type DeadLetter, type Queue } from '@vinequeue/core'
import { type MockCluster, startMockCluster } from '@vinequeue/kafka-mock'
import { type KafkaSenderOptions, supportedCompressions } from '@vinequeue/senders/kafka'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { expectExactly, expectKeysInOrder } from './expect-records.ts'

// The Kafka sender, loaded by package name from dist into a real queue's
// sender pool, against librdkafka's mock cluster (3 brokers, partition
// leaders spread over them), with no proxy in between; read back by
// librdkafka's consumer with CRC checks. A broker implementation that shares
// no code with the sender's client or with this repository.
let cluster: MockCluster
const queues: Queue[] = []
beforeAll(async () => {
  cluster = await startMockCluster(3)
})
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.stop({ timeoutMs: 2000 })))
})
afterAll(async () => {
  await cluster?.close()
})

function queue(
  sender: Partial<KafkaSenderOptions> & { topic: string },
  onDeadLetter?: (d: DeadLetter) => void,
) {
  const q = createQueue({
    sender: { module: '@vinequeue/senders/kafka', options: { brokers: cluster.brokers, ...sender } },
    senderThreads: 1,
    senderConcurrency: 2,
    maxBatchSize: 60,
    // One batch at a time: same-key items keep their order across batches.
    maxInFlightBatches: 1,
    flushIntervalMs: 10,
    retryInitialDelayMs: 5,
    retryMaxDelayMs: 50,
    sendTimeoutMs: 20_000,
    ...(onDeadLetter ? { onDeadLetter } : {}),
  })
  queues.push(q)
  return q
}

/** The items a case sends: bytes that survive JSON (multi-byte UTF-8 included), some repetitive (compressible). */
function items(n: number, keyed: boolean): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, id) => ({
    id,
    ...(keyed ? { k: `key-${id % 5}` } : {}),
    text: `ünïcode ✓ 🍇 ${id}`,
    pad: 'vine'.repeat(id % 50),
  }))
}

// A fixed list, not supportedCompressions: a codec that went missing from the sender fails here.
const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const

describe("Kafka sender against librdkafka's mock cluster", () => {
  it('offers exactly the codecs tested here', () => {
    expect(supportedCompressions).toEqual([...CODECS])
  })

  describe.each(CODECS)('compression %s', (compression) => {
    it.each([
      { idempotent: false, keyed: false },
      { idempotent: false, keyed: true },
      { idempotent: true, keyed: false },
      { idempotent: true, keyed: true },
    ])(
      'idempotent $idempotent, keyed $keyed: every item once, byte-identical, keys in order',
      async ({ idempotent, keyed }) => {
        const { name: topic, partitions } = await cluster.topic()
        expect(partitions).toBeGreaterThan(1)
        const letters: DeadLetter[] = []
        const q = queue({ topic, compression, idempotent, ...(keyed ? { key: 'k' } : {}) }, (d) =>
          letters.push(d),
        )
        await q.start()
        const sent = items(400, keyed)
        for (const item of sent) q.enqueue(item)
        await q.drain()
        expect(letters).toEqual([])

        const records = await cluster.read(topic)
        expectExactly(records, sent)
        const used = new Set(records.map((r) => r.partition))
        if (keyed) {
          // 5 keys over the mock's partitions: more than one partition, each key on one, in enqueue order.
          expect(used.size).toBeGreaterThan(1)
          expectKeysInOrder(records)
        } else {
          // Keyless batches each go to one partition, rotating per batch.
          expect(records.every((r) => r.key === null)).toBe(true)
          expect(used.size).toBeGreaterThan(1)
        }
        const m = q.metrics()
        expect(m.sentTotal).toBe(sent.length)
        expect(m.deadLetteredTotal).toBe(0)
      },
    )
  })
})

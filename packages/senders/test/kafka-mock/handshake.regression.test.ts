import { createQueue, type DeadLetter, type Queue } from '@vinequeue/core'
import { type MockCluster, startMockCluster } from '@vinequeue/kafka-mock'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { expectExactly } from './expect-records.ts'

// The sender reaches librdkafka's mock cluster directly (no translating
// proxy), idempotent or not. Two things stood in the way:
// - ApiVersions: the mock serves v0–v2 and answers v3 with
//   UNSUPPORTED_VERSION (35) and its range in the v0 layout (KIP-511); the
//   client must ask again with a version both know. @platformatic/kafka 1.35
//   never did (every batch dead-lettered at the handshake); 2.x falls back.
// - InitProducerId: the client sends producer id/epoch 0/0 unless told
//   otherwise; the mock reads that as an epoch bump of producer 0 and answers
//   UNKNOWN_PRODUCER_ID, dead-lettering every idempotent batch. The sender
//   passes the protocol's -1/-1 (kafka-sender.ts, UPSTREAM.md).
let cluster: MockCluster
const queues: Queue[] = []
beforeAll(async () => {
  cluster = await startMockCluster(1)
})
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.stop({ timeoutMs: 2000 })))
})
afterAll(async () => {
  await cluster?.close()
})

describe("Kafka sender handshake with librdkafka's mock (regression)", () => {
  it.each([false, true])('idempotent %s: delivered, nothing dead-lettered', async (idempotent) => {
    const { name: topic } = await cluster.topic()
    const letters: DeadLetter[] = []
    const q = createQueue({
      sender: {
        module: '@vinequeue/senders/kafka',
        options: { brokers: cluster.brokers, topic, idempotent },
      },
      senderThreads: 1,
      // Few attempts: a handshake the broker refuses shows up as dead letters, not as endless retries.
      maxAttempts: 2,
      retryInitialDelayMs: 5,
      retryMaxDelayMs: 20,
      flushIntervalMs: 10,
      onDeadLetter: (d) => letters.push(d),
    })
    queues.push(q)
    await q.start()
    const sent = Array.from({ length: 50 }, (_, id) => ({ id }))
    q.enqueueBatch(sent)
    await q.drain()
    expect(letters.map((d) => d.reason)).toEqual([])
    expectExactly(await cluster.read(topic), sent)
  })
})

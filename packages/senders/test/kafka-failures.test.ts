import { createQueue, type DeadLetter } from '@vinequeue/core'
import createKafkaSender from '@vinequeue/senders/kafka'
import { describe, expect, it } from 'vitest'
import { ApiKeys, KafkaBroker, KafkaErrorCodes } from './kafka-broker/index.ts'
import { expectEachOnce, json, REAL_BROKERS, useTarget } from './kafka-target.ts'

// Failure handling of the Kafka sender, driven by the broker stand-in's fault
// injection (skipped when VINEQUEUE_KAFKA_BROKERS points at a real cluster).
const h = useTarget()
const standInOnly = it.skipIf(REAL_BROKERS !== undefined)

describe('Kafka sender failures (stand-in)', () => {
  const broker = (): KafkaBroker => h.target.broker!

  standInOnly(
    'a retriable error (NOT_LEADER_OR_FOLLOWER), then success: every item once, the retry counted',
    async () => {
      const topic = await h.target.topic(1)
      broker().failNextProduce(1, { errorCode: KafkaErrorCodes.NOT_LEADER_OR_FOLLOWER })
      const q = h.queue({ topic })
      await q.start()
      q.enqueueBatch(Array.from({ length: 20 }, (_, id) => ({ id })))
      await q.drain()

      expectEachOnce(await h.target.read(topic, 20), 20)
      expect(broker().requestsOf(ApiKeys.PRODUCE)).toHaveLength(2)
      // Stale leader: the sender dropped its cached metadata before the retry.
      expect(broker().requestsOf(ApiKeys.METADATA).length).toBeGreaterThanOrEqual(2)
      const m = q.metrics()
      expect(m.errorsTotal).toBe(1)
      expect(m.retriesTotal).toBe(1)
      expect(m.sentTotal).toBe(20)
      expect(m.deadLetteredTotal).toBe(0)
    },
  )

  standInOnly(
    'a retriable error on one partition retries only that partition’s items (no duplicates)',
    async () => {
      const topic = await h.target.topic(3)
      broker().failNextProduce(1, { errorCode: KafkaErrorCodes.NOT_ENOUGH_REPLICAS, partitions: [1] })
      const q = h.queue({ topic, key: 'k' })
      await q.start()
      q.enqueueBatch(Array.from({ length: 60 }, (_, id) => ({ id, k: `k${id}` })))
      await q.drain()

      const records = await h.target.read(topic, 60)
      expectEachOnce(records, 60)
      expect(new Set(records.map((r) => r.partition))).toEqual(new Set([0, 1, 2]))
      const m = q.metrics()
      expect(m.errorsTotal).toBe(1)
      expect(m.retriesTotal).toBe(1)
      expect(m.sentTotal).toBe(60)
    },
  )

  standInOnly.each([
    ['MESSAGE_TOO_LARGE', KafkaErrorCodes.MESSAGE_TOO_LARGE],
    ['TOPIC_AUTHORIZATION_FAILED', KafkaErrorCodes.TOPIC_AUTHORIZATION_FAILED],
  ])('a permanent error (%s) dead-letters the batch at once, counted', async (name, errorCode) => {
    const topic = await h.target.topic(2)
    broker().failNextProduce(1, { errorCode })
    const letters: DeadLetter[] = []
    const q = h.queue({ topic, key: 'k' }, { onDeadLetter: (d) => letters.push(d) })
    await q.start()
    q.enqueueBatch(Array.from({ length: 25 }, (_, id) => ({ id, k: `k${id}` })))
    await q.flush()
    q.enqueueBatch(Array.from({ length: 5 }, (_, id) => ({ id: 100 + id, k: `k${id}` })))
    await q.drain()

    expect(letters).toHaveLength(1)
    expect(letters[0]!.items).toHaveLength(25)
    expect(letters[0]!.attempts).toBe(1)
    expect(letters[0]!.reason).toContain(`${name} (${errorCode})`)
    expect((await h.target.read(topic, 5)).map((r) => json(r).id).sort()).toEqual([100, 101, 102, 103, 104])
    const m = q.metrics()
    expect(m.deadLetteredTotal).toBe(25)
    expect(m.sentTotal).toBe(5)
    expect(m.retriesTotal).toBe(0)
  })

  standInOnly(
    'INVALID_RECORD with record_errors: only the named record is dead-lettered, the rest retried',
    async () => {
      const topic = await h.target.topic(1)
      broker().rejectRecords((r) => r.value?.toString().includes('"poison":true') === true)
      const letters: DeadLetter[] = []
      const q = h.queue({ topic }, { onDeadLetter: (d) => letters.push(d) })
      await q.start()
      q.enqueueBatch(Array.from({ length: 30 }, (_, id) => ({ id, poison: id === 11 })))
      await q.drain()

      expectEachOnce(await h.target.read(topic, 29), 29)
      expect(letters.flatMap((d) => d.items)).toEqual([{ id: 11, poison: true }])
      expect(letters[0]!.reason).toMatch(/record rejected by the broker: INVALID_RECORD \(87\)/)
      const m = q.metrics()
      expect(m.deadLetteredTotal).toBe(1)
      expect(m.sentTotal).toBe(29)
      expect(m.retriesTotal).toBe(1)
    },
  )

  standInOnly('retriable errors past maxAttempts dead-letter the batch with the attempts made', async () => {
    const topic = await h.target.topic(1)
    broker().failNextProduce(3, { errorCode: KafkaErrorCodes.NOT_LEADER_OR_FOLLOWER })
    const letters: DeadLetter[] = []
    const q = h.queue({ topic }, { maxAttempts: 3, onDeadLetter: (d) => letters.push(d) })
    await q.start()
    q.enqueueBatch(Array.from({ length: 10 }, (_, id) => ({ id })))
    await q.drain()

    expect(letters).toHaveLength(1)
    expect(letters[0]!.attempts).toBe(3)
    expect(letters[0]!.items).toHaveLength(10)
    expect(letters[0]!.reason).toMatch(/gave up after 3 attempts.*NOT_LEADER_OR_FOLLOWER \(6\)/)
    expect(await h.target.read(topic, 0)).toEqual([])
    expect(q.metrics().retriesTotal).toBe(2)
  })

  standInOnly(
    'an unreachable broker and a missing topic are retried, not dead-lettered at once',
    async () => {
      const letters: DeadLetter[] = []
      const closed = await KafkaBroker.start()
      const address = closed.address
      await closed.close()
      const a = h.queue(
        { brokers: [address], topic: 't' },
        { maxAttempts: 2, onDeadLetter: (d) => letters.push(d) },
      )
      const b = h.queue({ topic: 'missing' }, { maxAttempts: 2, onDeadLetter: (d) => letters.push(d) })
      await Promise.all([a.start(), b.start()])
      a.enqueue({ id: 1 })
      b.enqueue({ id: 2 })
      await Promise.all([a.drain(), b.drain()])

      expect(letters.map((d) => d.attempts)).toEqual([2, 2])
      const reasons = letters.map((d) => d.reason).join('\n')
      expect(reasons).toMatch(/Connection to 127\.0\.0\.1:\d+ failed/)
      expect(reasons).toMatch(/Kafka topic missing does not exist/)
    },
  )

  standInOnly(
    'idempotent: a lost response is re-sent by the client and deduplicated by the broker',
    async () => {
      const topic = await h.target.topic(1)
      broker().dropNextProduceResponses(1)
      const q = h.queue({ topic, idempotent: true, retryDelayMs: 5 })
      await q.start()
      q.enqueueBatch(Array.from({ length: 15 }, (_, id) => ({ id })))
      await q.drain()

      expectEachOnce(await h.target.read(topic, 15), 15)
      expect(broker().requestsOf(ApiKeys.PRODUCE)).toHaveLength(2)
      expect(q.metrics().retriesTotal).toBe(0)
    },
  )

  standInOnly(
    'without idempotence a lost response is retried by the queue: duplicates, never loss',
    async () => {
      const topic = await h.target.topic(1)
      broker().dropNextProduceResponses(1)
      const q = h.queue({ topic })
      await q.start()
      q.enqueueBatch(Array.from({ length: 15 }, (_, id) => ({ id })))
      await q.drain()

      const ids = (await h.target.read(topic, 30)).map((r) => json(r).id)
      expect(ids.sort((x, y) => x - y)).toEqual([...Array(15).keys()].flatMap((id) => [id, id]))
      expect(q.metrics().retriesTotal).toBe(1)
    },
  )

  standInOnly(
    'idempotent: after a partly failed request a new producer id keeps later records from being lost',
    async () => {
      const topic = await h.target.topic(3)
      broker().rejectRecords((r) => r.value?.toString().includes('"poison":true') === true)
      const letters: DeadLetter[] = []
      const q = h.queue({ topic, idempotent: true, key: 'k' }, { onDeadLetter: (d) => letters.push(d) })
      await q.start()
      // Batch 1: the poison's partition is rejected, the two others are written.
      q.enqueueBatch(Array.from({ length: 30 }, (_, id) => ({ id, k: `k${id % 6}`, poison: id === 0 })))
      await q.flush()
      // Batch 2, the same shape: with stale sequence numbers the broker would
      // take its batches for duplicates of batch 1's and drop them.
      q.enqueueBatch(
        Array.from({ length: 30 }, (_, id) => ({ id: 100 + id, k: `k${id % 6}`, poison: false })),
      )
      await q.drain()

      const ids = (await h.target.read(topic, 59)).map((r) => json(r).id)
      expect(ids).toHaveLength(59)
      expect(new Set(ids).size).toBe(59)
      expect(letters.flatMap((d) => d.items)).toEqual([{ id: 0, k: 'k0', poison: true }])
      expect(broker().requestsOf(ApiKeys.INIT_PRODUCER_ID).length).toBeGreaterThanOrEqual(2)
    },
  )

  standInOnly(
    'a request timeout (no answer) is retried, though the client marks timeouts not retriable',
    async () => {
      const topic = await h.target.topic(1)
      broker().stallNextProduce(1)
      const q = h.queue({ topic, requestTimeoutMs: 200 })
      await q.start()
      q.enqueueBatch(Array.from({ length: 10 }, (_, id) => ({ id })))
      await q.drain()

      expectEachOnce(await h.target.read(topic, 10), 10)
      const m = q.metrics()
      expect(m.retriesTotal).toBe(1)
      expect(m.deadLetteredTotal).toBe(0)
    },
  )

  standInOnly(
    'a send still waiting at sendTimeoutMs settles (retryably) instead of having its thread killed',
    async () => {
      const topic = await h.target.topic(1)
      broker().stallNextProduce(1)
      const q = h.queue({ topic }, { sendTimeoutMs: 300 })
      await q.start()
      q.enqueueBatch(Array.from({ length: 10 }, (_, id) => ({ id })))
      await q.drain()

      expectEachOnce(await h.target.read(topic, 10), 10)
      const m = q.metrics()
      expect(m.retriesTotal).toBe(1)
      expect(m.timeoutsTotal).toBe(1) // the send timed out once and was retried
      expect(m.senderFailuresTotal).toBe(0) // its thread was never terminated
    },
  )

  standInOnly('passes SASL/PLAIN credentials to the client; wrong ones are a permanent failure', async () => {
    const secure = await KafkaBroker.start({ topics: { t: 1 }, sasl: { username: 'vq', password: 's3cret' } })
    try {
      const letters: DeadLetter[] = []
      const sasl = (password: string) => ({ mechanism: 'PLAIN' as const, username: 'vq', password })
      const good = h.queue({ brokers: [secure.address], topic: 't', sasl: sasl('s3cret') })
      const bad = h.queue(
        { brokers: [secure.address], topic: 't', sasl: sasl('wrong') },
        { onDeadLetter: (d) => letters.push(d) },
      )
      await Promise.all([good.start(), bad.start()])
      good.enqueue({ id: 1 })
      bad.enqueue({ id: 2 })
      await Promise.all([good.drain(), bad.drain()])

      expect(secure.records.map((r) => JSON.parse(r.value!.toString()))).toEqual([{ id: 1 }])
      expect(letters).toHaveLength(1)
      expect(letters[0]!.attempts).toBe(1)
      expect(letters[0]!.reason).toMatch(/SASL authentication failed/)
      expect(secure.problems).toEqual([])
    } finally {
      // The queues are idle (drained); the harness stops them after the test.
      await secure.close()
    }
  })

  standInOnly('close() closes the producer’s connections and is idempotent', async () => {
    const topic = await h.target.topic(1)
    // In-thread, so that close() is called here (queue.stop() terminates pool threads).
    const sender = await createKafkaSender({ brokers: h.target.brokers, topic })
    const q = createQueue({
      send: (batch, ctx) => sender.send(batch, ctx),
      flushIntervalMs: 10,
      maxAttempts: 1,
    })
    h.track(q)
    await q.start()
    for (let id = 0; id < 10; id++) q.enqueue({ id })
    await q.drain()
    expectEachOnce(await h.target.read(topic, 10), 10)
    expect(broker().openConnections).toBeGreaterThan(0)

    await sender.close!()
    await sender.close!()
    for (let i = 0; i < 500 && broker().openConnections > 0; i++) await new Promise((r) => setTimeout(r, 10))
    expect(broker().openConnections).toBe(0)
  })
})

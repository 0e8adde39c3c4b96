import { describe, expect, it } from 'vitest'
import { ApiKeys, type KafkaBroker } from './kafka-broker/index.ts'
import { expectEachOnce, json, REAL_BROKERS, useTarget } from './kafka-target.ts'

// An idempotent batch whose every attempt inside the client lost its answer
// (the broker wrote it) goes back to the queue, which retries it. That retry
// used to go out under a new producer id, which no broker deduplicates: the
// records were written twice. Now it keeps the producer id, epoch and
// sequence numbers of the attempt the client gave up on, and the broker
// acknowledges it without writing it again. (librdkafka's mock cannot show
// this: it checks sequence numbers of transactional producers only.)
const h = useTarget()
const standInOnly = it.skipIf(REAL_BROKERS !== undefined)

describe('Kafka sender: idempotence across the queue’s retries (regression)', () => {
  const broker = (): KafkaBroker => h.target.broker!

  standInOnly(
    'a batch retried by the queue after the client gave up is written once, under one producer id',
    async () => {
      const topic = await h.target.topic(3)
      // retries 2: three attempts inside the client, every answer lost, then the queue's retry.
      broker().dropNextProduceResponses(3)
      const q = h.queue(
        { topic, idempotent: true, retries: 2, retryDelayMs: 5, key: 'k' },
        { maxInFlightBatches: 1 },
      )
      await q.start()
      q.enqueueBatch(Array.from({ length: 30 }, (_, id) => ({ id, k: `k${id % 5}` })))
      await q.drain()
      // A later batch continues the same producer's sequence numbers (a gap would be refused).
      q.enqueueBatch(Array.from({ length: 30 }, (_, i) => ({ id: 30 + i, k: `k${i % 5}` })))
      await q.drain()

      const records = await h.target.read(topic, 60)
      expectEachOnce(records, 60)
      expect(
        new Set(
          broker()
            .recordsOf(topic)
            .map((r) => r.producerId),
        ).size,
      ).toBe(1)
      expect(broker().requestsOf(ApiKeys.INIT_PRODUCER_ID)).toHaveLength(1)
      // 3 lost + the queue's retry + the later batch.
      expect(broker().requestsOf(ApiKeys.PRODUCE)).toHaveLength(5)
      const m = q.metrics()
      expect(m.retriesTotal).toBe(1)
      expect(m.deadLetteredTotal).toBe(0)
      expect(records.map((r) => json(r).id).sort((a, b) => a - b)).toEqual([...Array(60).keys()])
    },
  )
})

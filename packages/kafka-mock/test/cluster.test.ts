import { Producer } from '@platformatic/kafka'
import { startMockCluster } from '@vinequeue/kafka-mock'
import { describe, expect, it } from 'vitest'

describe('the mock cluster harness', () => {
  it('starts librdkafka’s mock and names its brokers and version', async () => {
    const cluster = await startMockCluster(2)
    try {
      expect(cluster.brokers).toHaveLength(2)
      for (const b of cluster.brokers) expect(b).toMatch(/^127\.0\.0\.1:\d+$/)
      expect(cluster.librdkafka).toMatch(/^\d+\.\d+\.\d+/)
      const { name, partitions } = await cluster.topic()
      expect(partitions).toBeGreaterThan(1)
      expect(await cluster.read(name)).toEqual([])
    } finally {
      await cluster.close()
    }
  })

  it('counts what a client produced (high watermarks) and reads it back', async () => {
    const cluster = await startMockCluster(1)
    // A plain non-idempotent producer: no queue, no sender of this repository.
    const producer = new Producer({
      clientId: 'kafka-mock-test',
      bootstrapBrokers: cluster.brokers,
      autocreateTopics: false,
      retries: 0,
    })
    try {
      const { name, partitions } = await cluster.topic()
      expect(await cluster.highWatermarks(name)).toEqual(new Array(partitions).fill(0))
      const values = Array.from({ length: 7 }, (_, i) => `value ${i}`)
      await producer.send({
        messages: values.map((v, i) => ({ topic: name, partition: i % 2, value: Buffer.from(v) })),
        acks: -1,
      })
      const expected = new Array(partitions).fill(0)
      expected[0] = 4
      expected[1] = 3
      expect(await cluster.highWatermarks(name)).toEqual(expected)
      const records = await cluster.read(name)
      expect(records.map((r) => [r.partition, r.value!.toString('utf8')]).sort()).toEqual(
        values.map((v, i) => [i % 2, v]).sort(),
      )
    } finally {
      await producer.close()
      await cluster.close()
    }
  })

  it('fails with the reason when the cluster cannot start (never skips)', async () => {
    await expect(startMockCluster(1, '/nonexistent/node')).rejects.toThrow(
      /librdkafka's mock Kafka cluster did not start \(node-rdkafka under \/nonexistent\/node\): .*ENOENT/,
    )
  })
})

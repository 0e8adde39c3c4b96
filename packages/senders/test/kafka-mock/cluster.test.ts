import { describe, expect, it } from 'vitest'
import { startMockCluster } from './cluster.ts'

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

  it('fails with the reason when the cluster cannot start (never skips)', async () => {
    await expect(startMockCluster(1, '/nonexistent/node')).rejects.toThrow(
      /librdkafka's mock Kafka cluster did not start \(node-rdkafka under \/nonexistent\/node\): .*ENOENT/,
    )
  })
})

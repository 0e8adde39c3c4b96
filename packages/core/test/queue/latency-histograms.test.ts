import { createQueue } from '@vinequeue/core'
import { describe, expect, it } from 'vitest'
import { tempDir } from '../helpers.ts'

describe('queue.latencyHistograms()', () => {
  it('returns the buckets behind metrics()’s send and fsync percentiles', async () => {
    const { dir, cleanup } = tempDir()
    let sends = 0
    const q = createQueue({
      maxBatchSize: 50,
      flushIntervalMs: 5,
      wal: { dir },
      // Every send takes at least 20 ms: all samples land at or above 20,000 µs. (A 20 ms
      // timer alone can fire a little early by performance.now(): libuv times it from the
      // loop's cached clock, so the send sleeps until 20 ms have passed by that clock.)
      send: async () => {
        sends++
        const until = performance.now() + 20
        for (let left = 20; left > 0; left = until - performance.now()) {
          await new Promise((r) => setTimeout(r, Math.ceil(left)))
        }
      },
    })
    try {
      const empty = q.latencyHistograms()
      expect(empty.send.count).toBe(0)
      expect(empty.walSync.count).toBe(0)
      expect(empty.send.counts).toHaveLength(empty.send.upperBoundsUs.length)
      await q.start()
      for (let i = 0; i < 500; i++) q.enqueue({ i })
      await q.drain()
      const h = q.latencyHistograms()
      const m = q.metrics()
      expect(h.send.count).toBe(sends)
      expect(h.send.counts.reduce((a, b) => a + b, 0)).toBe(h.send.count)
      // Bounds: four per doubling, ascending, the same frozen array every time.
      expect(h.send.upperBoundsUs[3]).toBeCloseTo(2, 9)
      expect(h.send.upperBoundsUs[7]).toBeCloseTo(4, 9)
      expect(Object.isFrozen(h.send.upperBoundsUs)).toBe(true)
      expect(q.latencyHistograms().send.upperBoundsUs).toBe(h.send.upperBoundsUs)
      // No sample below 20 ms: every bucket whose upper bound is at most 20,000 µs is empty.
      h.send.counts.forEach((n, b) => {
        if (h.send.upperBoundsUs[b]! <= 20_000) expect(n, `bucket ${b}`).toBe(0)
      })
      expect(h.send.sumUs).toBeGreaterThanOrEqual(20_000 * h.send.count)
      expect(h.send.sumUs / h.send.count / 1000).toBeCloseTo(m.avgSendLatency, 6)
      // metrics()'s p99 is the upper bound of the bucket holding the 99th percentile sample.
      let seen = 0
      const rank = Math.ceil(h.send.count * 0.99)
      const p99Bucket = h.send.counts.findIndex((n) => (seen += n) >= rank)
      expect(m.sendLatencyP99).toBe(Math.round(h.send.upperBoundsUs[p99Bucket]!) / 1000)
      // (An fsync may still land after drain(): the group commit that carries the last
      // acknowledgement record. Read between two snapshots of the counter.)
      const before = q.metrics().fsyncsTotal
      const walSync = q.latencyHistograms().walSync.count
      const after = q.metrics().fsyncsTotal
      expect(walSync).toBeGreaterThanOrEqual(before)
      expect(walSync).toBeLessThanOrEqual(after)
      expect(walSync).toBeGreaterThan(0)
    } finally {
      await q.stop()
      cleanup()
    }
  })
})

import { createQueue, type Queue, SendError } from '@vinequeue/core'
import { afterEach, describe, expect, it } from 'vitest'

const queues: Queue[] = []
afterEach(async () => {
  for (const q of queues.splice(0)) await q.stop({ timeoutMs: 5000 })
})

/**
 * A target that serves at most `capacity` requests at once (each takes
 * `serviceMs`) and answers 503 to any request beyond that, as an overloaded
 * service behind a concurrency limiter does.
 */
function limitedTarget(capacity: number, serviceMs: number) {
  const t = { active: 0, peak: 0, rejected: 0, delivered: new Map<number, number>() }
  const send = async (batch: { items(): unknown[] }): Promise<undefined> => {
    if (t.active >= capacity) {
      t.rejected++
      throw new SendError('HTTP 503: over capacity', { retryable: true, status: 503 })
    }
    t.active++
    t.peak = Math.max(t.peak, t.active)
    try {
      await new Promise((r) => setTimeout(r, serviceMs))
      for (const item of batch.items() as number[]) t.delivered.set(item, (t.delivered.get(item) ?? 0) + 1)
    } finally {
      t.active--
    }
    return undefined
  }
  return { t, send }
}

async function run(adaptive: boolean) {
  const { t, send } = limitedTarget(3, 15)
  const q = createQueue({
    send,
    maxBatchSize: 50,
    flushIntervalMs: 5,
    maxInFlightBatches: 16,
    retryInitialDelayMs: 5,
    retryMaxDelayMs: 50,
    circuitBreaker: false,
    adaptiveConcurrency: adaptive,
  })
  queues.push(q)
  await q.start()
  // The limit over the run, sampled (it moves every round trip).
  let peakLimit = 0
  const sampler = setInterval(() => {
    peakLimit = Math.max(peakLimit, q.metrics().concurrencyLimit)
  }, 2)
  const n = 8000
  for (let i = 0; i < n; i++) await q.enqueueAsync(i)
  await q.drain()
  clearInterval(sampler)
  return { t, n, metrics: q.metrics(), peakLimit }
}

describe('adaptive concurrency against a target with a concurrency limit', () => {
  it('finds the target capacity: far fewer 503s than a fixed 16 in flight, everything delivered once', async () => {
    const fixed = await run(false)
    const adaptive = await run(true)
    for (const { t, n } of [fixed, adaptive]) {
      expect(t.delivered.size).toBe(n)
      expect([...t.delivered.values()].every((c) => c === 1)).toBe(true)
    }
    expect(fixed.metrics.concurrencyLimit).toBe(16)
    // With 16 in flight against a capacity of 3, most attempts are refused;
    // the adaptive limit climbs to the capacity and backs off past it.
    expect(fixed.t.rejected).toBeGreaterThan(100)
    expect(adaptive.t.rejected).toBeLessThan(fixed.t.rejected / 4)
    // It climbed to the capacity (from 1) and stayed near it.
    expect(adaptive.peakLimit).toBeGreaterThanOrEqual(3)
    expect(adaptive.peakLimit).toBeLessThanOrEqual(8)
    expect(adaptive.metrics.concurrencyLimit).toBeLessThanOrEqual(6)
  }, 60_000)
})

import { describe, expect, it } from 'vitest'
import { backoffCapMs, retryDecision } from '../../src/pipeline/retry-policy.ts'

const config = { maxAttempts: 5, maxRetryAgeMs: 60_000, retryInitialDelayMs: 100, retryMaxDelayMs: 1000 }

describe('retry policy', () => {
  it('doubles the backoff cap per attempt up to retryMaxDelayMs', () => {
    expect([1, 2, 3, 4, 5, 6].map((a) => backoffCapMs(config, a))).toEqual([100, 200, 400, 800, 1000, 1000])
    // (A huge attempt count stays finite.)
    expect(backoffCapMs({ ...config, retryMaxDelayMs: Number.MAX_SAFE_INTEGER }, 10_000)).toBe(100 * 2 ** 30)
  })

  it('draws the delay uniformly below the cap (full jitter)', () => {
    expect(retryDecision(config, 3, 0, 'x', undefined, () => 0)).toEqual({ retry: true, delayMs: 0 })
    expect(retryDecision(config, 3, 0, 'x', undefined, () => 0.5)).toEqual({ retry: true, delayMs: 200 })
    const d = retryDecision(config, 3, 0, 'x', undefined, () => 0.999)
    expect(d.retry && d.delayMs).toBeCloseTo(399.6)
  })

  it("never retries sooner than the target's retryAfterMs, itself capped at retryMaxDelayMs", () => {
    expect(retryDecision(config, 1, 0, 'x', 700, () => 0.5)).toEqual({ retry: true, delayMs: 700 })
    expect(retryDecision(config, 1, 0, 'x', 30_000, () => 0)).toEqual({ retry: true, delayMs: 1000 })
    // A shorter retryAfterMs than the drawn delay changes nothing.
    expect(retryDecision(config, 4, 0, 'x', 10, () => 0.5)).toEqual({ retry: true, delayMs: 400 })
  })

  it('gives up at maxAttempts, naming the attempts and the reason', () => {
    expect(retryDecision(config, 4, 0, 'HTTP 503', undefined, () => 0).retry).toBe(true)
    expect(retryDecision(config, 5, 0, 'HTTP 503')).toEqual({
      retry: false,
      reason: 'gave up after 5 attempts: HTTP 503',
    })
  })

  it('gives up once the batch is maxRetryAgeMs old, naming its age', () => {
    expect(retryDecision(config, 2, 59_999, 'x', undefined, () => 0).retry).toBe(true)
    expect(retryDecision(config, 2, 60_000.4, 'HTTP 503')).toEqual({
      retry: false,
      reason: 'gave up after 60000 ms (maxRetryAgeMs 60000), 2 attempts: HTTP 503',
    })
  })

  it('draws no random number when it gives up', () => {
    let draws = 0
    retryDecision(config, 5, 0, 'x', undefined, () => draws++)
    expect(draws).toBe(0)
  })
})

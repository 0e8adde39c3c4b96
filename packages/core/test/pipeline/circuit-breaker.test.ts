import { describe, expect, it } from 'vitest'
import { CircuitBreaker, type CircuitStateName } from '../../src/pipeline/circuit-breaker.ts'

function breaker(overrides: Partial<ConstructorParameters<typeof CircuitBreaker>[0]> = {}) {
  let now = 1_000_000
  const changes: CircuitStateName[] = []
  const b = new CircuitBreaker(
    {
      failureRateThreshold: 0.5,
      minimumRequests: 4,
      windowMs: 1000,
      resetTimeoutMs: 500,
      halfOpenProbes: 2,
      ...overrides,
    },
    (s) => changes.push(s),
    () => now,
  )
  return { b, changes, advance: (ms: number) => (now += ms) }
}

describe('CircuitBreaker', () => {
  it('stays closed below the minimum number of outcomes, whatever the ratio', () => {
    const { b, changes } = breaker()
    for (let i = 0; i < 3; i++) b.record(true, false)
    expect(b.state).toBe('closed')
    expect(changes).toEqual([])
  })

  it('opens at the failure-rate threshold, refuses sends while open, half-opens after the reset timeout', () => {
    const { b, changes, advance } = breaker()
    b.record(false, false)
    b.record(false, false)
    b.record(true, false)
    expect(b.state).toBe('closed') // 1/3, and under the minimum
    b.record(true, false) // 2/4 = 0.5
    expect(b.state).toBe('open')
    expect(b.acquire()).toBe(false)
    expect(b.msUntilHalfOpen()).toBe(500)
    advance(499)
    expect(b.acquire()).toBe(false)
    advance(1)
    // Regression: reading the state half-opens the circuit too; whoever then
    // parks a batch must still see that probes are due (awaitingProbes false).
    expect(b.state).toBe('half-open')
    expect(b.awaitingProbes).toBe(false)
    expect(b.acquire()).toBe('probe')
    expect(b.acquire()).toBe('probe')
    expect(b.awaitingProbes).toBe(true)
    expect(b.acquire()).toBe(false) // only halfOpenProbes at once
    expect(changes).toEqual(['open', 'half-open'])
  })

  it('closes when every probe succeeds; re-opens on a failed probe; ignores outcomes of sends from before', () => {
    const { b, changes, advance } = breaker()
    for (let i = 0; i < 4; i++) b.record(true, false)
    advance(500)
    expect(b.acquire()).toBe('probe')
    b.record(false, false) // a send from before the circuit opened: says nothing
    expect(b.state).toBe('half-open')
    b.record(true, true)
    expect(b.state).toBe('open')
    advance(500)
    expect(b.acquire()).toBe('probe')
    expect(b.acquire()).toBe('probe')
    b.record(false, true)
    expect(b.state).toBe('half-open')
    b.record(false, true)
    expect(b.state).toBe('closed')
    expect(b.acquire()).toBe(true)
    expect(changes).toEqual(['open', 'half-open', 'open', 'half-open', 'closed'])
  })

  it('forgets outcomes older than the rolling window', () => {
    const { b, advance } = breaker()
    b.record(true, false)
    b.record(true, false)
    b.record(true, false)
    advance(1100) // the three failures age out
    b.record(false, false)
    b.record(false, false)
    b.record(false, false)
    b.record(true, false) // 1/4 < 0.5
    expect(b.state).toBe('closed')
  })
})

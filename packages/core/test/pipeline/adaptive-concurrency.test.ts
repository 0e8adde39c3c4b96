import { describe, expect, it } from 'vitest'
import { AdaptiveConcurrency } from '../../src/pipeline/adaptive-concurrency.ts'

const SETTINGS = { initialConcurrency: 1, decreaseRatio: 0.9, ewmaAlpha: 0.4, rttDeviationScale: 2.5 }

/**
 * A target with a fixed RTT, driven by a fake clock: each step sends `limit`
 * batches (reaching the limit), then settles them `rtt` ms later.
 */
function drive(
  c: AdaptiveConcurrency,
  clock: { now: number },
  rtt: number,
  outcome = { ok: true, bp: false },
) {
  for (let i = 1; i <= c.limit; i++) c.started(i)
  clock.now += rtt
  const sent = c.limit
  for (let i = 0; i < sent; i++) c.settled(rtt, outcome.ok, outcome.bp)
}

function controller(max: number, initial = 1) {
  const clock = { now: 0 }
  const c = new AdaptiveConcurrency({ ...SETTINGS, initialConcurrency: initial }, max, () => clock.now)
  return { c, clock }
}

describe('AdaptiveConcurrency (AIMD)', () => {
  it('starts at initialConcurrency and adds one per period while the limit is reached and the RTT holds', () => {
    const { c, clock } = controller(8)
    expect(c.limit).toBe(1)
    const seen = [c.limit]
    for (let step = 0; step < 12; step++) {
      drive(c, clock, 10)
      seen.push(c.limit)
    }
    // Never more than +1 per period, up to the maximum and no further.
    for (let i = 1; i < seen.length; i++) expect(seen[i]! - seen[i - 1]!).toBeLessThanOrEqual(1)
    expect(c.limit).toBe(8)
  })

  it('does not grow without demand (the limit was never reached)', () => {
    const { c, clock } = controller(8, 3)
    for (let step = 0; step < 10; step++) {
      c.started(1) // one batch at a time: below the limit of 3
      clock.now += 10
      c.settled(10, true, false)
    }
    expect(c.limit).toBe(3)
  })

  it('multiplies the limit by decreaseRatio on back pressure, never below 1', () => {
    const { c, clock } = controller(64, 40)
    drive(c, clock, 10) // baseline
    const before = c.limit
    drive(c, clock, 10, { ok: false, bp: true })
    expect(c.limit).toBe(Math.floor(before * 0.9))
    for (let step = 0; step < 100; step++) drive(c, clock, 10, { ok: false, bp: true })
    expect(c.limit).toBe(1)
  })

  it('backs off when the RTT climbs well above its past mean and deviation', () => {
    const { c, clock } = controller(16, 10)
    for (let step = 0; step < 5; step++) drive(c, clock, 10) // steady: grows a little
    const before = c.limit
    drive(c, clock, 60) // six times the past RTT, with no deviation seen so far
    expect(c.limit).toBe(Math.floor(before * 0.9))
  })

  it('holds its limit when the RTT only wobbles within the deviation it has seen', () => {
    const { c, clock } = controller(4, 4) // at the maximum: cannot grow
    const wobble = [10, 12, 9, 11]
    for (let step = 0; step < 8; step++) drive(c, clock, wobble[step % 4]!) // the deviation is learnt
    const limits: number[] = []
    for (let step = 0; step < 40; step++) {
      drive(c, clock, wobble[step % 4]!)
      limits.push(c.limit)
    }
    expect(Math.min(...limits)).toBe(Math.max(...limits))
  })
})

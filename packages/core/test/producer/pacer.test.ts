/**
 * The pacer on a simulated clock and lane: a producer that could enqueue far
 * faster than the lane drains, a consumer that drains at a set rate. No real
 * time passes, so the figures are exact and the test cannot be flaky.
 */
import { describe, expect, it } from 'vitest'
import { Pacer, UNPACED } from '../../src/producer/pacer.ts'

const CAPACITY = 64 * 1024
const LIMITS = { softLimit: 0.5, hardLimit: 0.95, maxBackoffMs: 50 }
const RECORD = 100

interface Run {
  /** Records the producer put into the lane. */
  put: number
  /** Bytes the consumer took. */
  drained: number
  /** Calls the pacer made sleep. */
  slept: number
  /** Calls refused at the hard limit (block: they would wait there). */
  atHardLimit: number
  /** Calls the pacer let through unpaced while the lane was past the soft limit. */
  unpaced: number
  /** Longest the held-back clock ran (ms). */
  maxHeldMs: number
  pacer: Pacer
}

/**
 * A producer whose every call costs `callMs` of its own time and a consumer
 * draining `drainPerMs(t)` bytes per ms; timers fire `lateMs` late.
 */
function simulate(opts: {
  ms: number
  drainPerMs: (t: number) => number
  maxBlockMs: number
  callMs?: number
  lateMs?: number
  pacer?: Pacer
  start?: { t: number; used: number; read: number }
}): Run & { t: number; used: number; read: number } {
  const callMs = opts.callMs ?? 0.002
  const lateMs = opts.lateMs ?? 0.3
  let t = opts.start?.t ?? 0
  let used = opts.start?.used ?? 0
  let read = opts.start?.read ?? 0
  const pacer = opts.pacer ?? new Pacer(LIMITS, CAPACITY, read)
  const run = { put: 0, drained: 0, slept: 0, atHardLimit: 0, unpaced: 0, maxHeldMs: 0, pacer }
  const advance = (dt: number): void => {
    const step = Math.min(used, opts.drainPerMs(t) * dt)
    used -= step
    read = (read + step) >>> 0
    run.drained += step
    t += dt
  }
  const end = t + opts.ms
  while (t < end) {
    pacer.observe(t, read, 0)
    const fill = used / CAPACITY
    const decision = pacer.admit(t, fill, RECORD, opts.maxBlockMs)
    run.maxHeldMs = Math.max(run.maxHeldMs, pacer.heldMs(t))
    if (decision === UNPACED) run.unpaced++
    if (decision > 0) {
      run.slept++
      advance(decision + lateMs)
    }
    if (used + RECORD <= LIMITS.hardLimit * CAPACITY) {
      used += RECORD
      run.put++
    } else {
      run.atHardLimit++
      advance(1) // a blocked call waits for room
      continue
    }
    advance(callMs)
  }
  return { ...run, t, used, read }
}

describe('Pacer', () => {
  it('a slower consumer: the producer settles at the drain rate, sleeping on few calls', () => {
    // The producer could do 500 records/ms; the lane drains 20 (2000 B/ms): 1/25 of it.
    const run = simulate({ ms: 10_000, drainPerMs: () => 2000, maxBlockMs: 1000 })
    const rate = (run.put * RECORD) / 10_000
    expect(rate / 2000).toBeGreaterThan(0.95)
    expect(rate / 2000).toBeLessThan(1.05)
    // Sleeps are ≥ 1 ms and carry the schedule: about one per ms, not one per call.
    expect(run.slept).toBeLessThan(run.put / 10)
    expect(run.slept).toBeGreaterThan(0)
    // It converged: the hard limit is met only while the drain rate is being learnt (first 50 ms).
    expect(run.atHardLimit).toBeLessThan(100)
    // The drain is steady, so the clock keeps restarting: maxBlockMs is never reached.
    expect(run.maxHeldMs).toBeLessThan(1000)
  })

  it('a tenth of the producer: same, and the lane stays between the limits', () => {
    // The producer: 10 records/ms (0.1 ms per call); the lane: 1 record/ms.
    const run = simulate({ ms: 20_000, drainPerMs: () => 100, maxBlockMs: 2000, callMs: 0.1 })
    const rate = (run.put * RECORD) / 20_000
    expect(rate / 100).toBeGreaterThan(0.95)
    expect(rate / 100).toBeLessThan(1.05)
    expect(run.used / CAPACITY).toBeLessThan(LIMITS.hardLimit)
    expect(run.maxHeldMs).toBeLessThan(2000)
  })

  it('a stalled consumer: calls are not paced, the lane fills to the hard limit', () => {
    const run = simulate({ ms: 2000, drainPerMs: (t) => (t < 500 ? 2000 : 0), maxBlockMs: 1000 })
    // Within the window (about a second) of the stall, pacing gives up.
    expect(run.atHardLimit).toBeGreaterThan(0)
    const tail = simulate({
      ms: 10,
      drainPerMs: () => 0,
      maxBlockMs: 1000,
      pacer: run.pacer,
      start: { t: run.t, used: run.used, read: run.read },
    })
    expect(tail.slept).toBe(0)
    expect(tail.put).toBe(0)
    expect(run.pacer.drainRate(run.t)).toBe(0)
  })

  it('a trickle that does not drain the soft-to-hard span in maxBlockMs: held past maxBlockMs, pacing stops', () => {
    // 5 B/ms: a slot every 20–40 ms (under maxBackoffMs), 5 kB per second against a 29 kB span.
    const trickle = (): number => 5
    const first = simulate({ ms: 900, drainPerMs: trickle, maxBlockMs: 1000, callMs: 0.01 })
    expect(first.maxHeldMs).toBeLessThan(1000)
    expect(first.slept).toBeGreaterThan(0)
    const then = simulate({
      ms: 2000,
      drainPerMs: trickle,
      maxBlockMs: 1000,
      callMs: 0.01,
      pacer: first.pacer,
      start: { t: first.t, used: first.used, read: first.read },
    })
    expect(then.maxHeldMs).toBeGreaterThanOrEqual(1000)
    // Past maxBlockMs the pacer lets calls through: the lane meets the hard limit, where fullPolicy decides.
    expect(then.unpaced).toBeGreaterThan(0)
    expect(then.atHardLimit).toBeGreaterThan(0)
  })

  it('a recovering consumer: held back while stalled, paced again once it drains', () => {
    const run = simulate({ ms: 5000, drainPerMs: (t) => (t < 1000 || t > 1600 ? 1000 : 0), maxBlockMs: 2000 })
    expect(run.maxHeldMs).toBeLessThan(2000)
    const rate = (run.put * RECORD) / 5000
    expect(rate).toBeGreaterThan(1000 * (4400 / 5000) * 0.9)
    expect(run.pacer.drainRate(run.t)).toBeGreaterThan(0)
  })

  it('past the soft limit with too little history: waits for it instead of filling the lane', () => {
    const pacer = new Pacer(LIMITS, CAPACITY, 0)
    pacer.observe(1000, 0, 0)
    // 10 ms of history: the call waits until there are 50.
    pacer.observe(1010, 500, 0)
    expect(pacer.drainRate(1010)).toBeNaN()
    expect(pacer.admit(1010, 0.6, RECORD, 1000)).toBeCloseTo(40, 6)
    expect(pacer.paced).toBe(1)
    pacer.observe(1050, 2500, 0)
    expect(pacer.drainRate(1050)).toBeCloseTo(50, 6)
    expect(pacer.admit(1050, 0.6, RECORD, 1000)).toBe(0)
    // At the hard limit the policy applies without the wait.
    const full = new Pacer(LIMITS, CAPACITY, 0)
    full.observe(1000, 0, 0)
    expect(full.admit(1010, 0.95, RECORD, 1000)).toBe(UNPACED)
  })

  it('under the soft limit: no pacing, and the held-back clock stops', () => {
    const pacer = new Pacer(LIMITS, CAPACITY, 0)
    for (let t = 0; t <= 200; t += 25) pacer.observe(t, t * 10, 0)
    expect(pacer.admit(200, 0.9, RECORD, 1000)).toBeGreaterThanOrEqual(0)
    expect(pacer.heldMs(300)).toBe(100)
    expect(pacer.admit(300, 0.4, RECORD, 1000)).toBe(0)
    expect(pacer.heldMs(400)).toBe(0)
    expect(pacer.backoffUs).toBe(0)
  })

  it('maxBackoffMs 0 turns pacing off', () => {
    const pacer = new Pacer({ ...LIMITS, maxBackoffMs: 0 }, CAPACITY, 0)
    for (let t = 0; t <= 200; t += 25) pacer.observe(t, t * 10, 0)
    expect(pacer.admit(200, 0.9, RECORD, 1000)).toBe(UNPACED)
  })

  it('bytes this producer evicted (dropOldest) are not counted as drained', () => {
    const pacer = new Pacer(LIMITS, CAPACITY, 0)
    for (let t = 0; t <= 200; t += 25) pacer.observe(t, t * 10, t * 10)
    expect(pacer.drainRate(200)).toBe(0)
    expect(pacer.admit(200, 0.9, RECORD, 1000)).toBe(UNPACED)
  })

  it('READ wrapping past 2^32 is followed', () => {
    const pacer = new Pacer(LIMITS, CAPACITY, 2 ** 32 - 1000)
    for (let t = 0; t <= 100; t += 25) pacer.observe(t, (2 ** 32 - 1000 + t * 20) >>> 0, 0)
    expect(pacer.drainRate(100)).toBeCloseTo(20, 5)
  })
})

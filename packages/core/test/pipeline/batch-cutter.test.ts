import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { AdaptiveBatchSize } from '../../src/pipeline/adaptive-batch-size.ts'
import { BatchCutter } from '../../src/pipeline/batch-cutter.ts'

describe('BatchCutter', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['performance', 'Date'] })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  const make = (): BatchCutter =>
    new BatchCutter({ maxBatchSize: 10, maxBatchBytes: 1000, flushIntervalMs: 5000 })

  it('cuts by count', () => {
    const c = make()
    const opened = performance.now()
    expect(c.check(9, opened, false)).toBeUndefined()
    expect(c.check(10, opened, false)).toBe('count')
  })

  it('cuts by bytes when the next record does not fit', () => {
    const c = make()
    expect(c.room(3, 900)).toEqual({ items: 7, bytes: 100 })
    expect(c.check(3, performance.now(), true)).toBe('bytes')
  })

  it('cuts by linger exactly flushIntervalMs after the first item', () => {
    const c = make()
    const opened = performance.now()
    vi.advanceTimersByTime(4999)
    expect(c.check(1, opened, false)).toBeUndefined()
    expect(c.msUntilLinger(1, opened)).toBe(1)
    vi.advanceTimersByTime(1)
    expect(c.check(1, opened, false)).toBe('linger')
    expect(c.msUntilLinger(1, opened)).toBe(0)
  })

  it('never cuts an empty batch and has no deadline for it', () => {
    const c = make()
    vi.advanceTimersByTime(1e6)
    expect(c.check(0, 0, true)).toBeUndefined()
    expect(c.msUntilLinger(0, 0)).toBe(Number.POSITIVE_INFINITY)
  })
})

describe('AdaptiveBatchSize', () => {
  const opts = { minBatchSize: 100, maxBatchSize: 5000, targetLatencyMs: 50 }

  it('grows while sends are fast, up to the maximum', () => {
    const a = new AdaptiveBatchSize(opts, 100, 4)
    let last = a.size
    for (let i = 0; i < 4 * 40; i++) a.record(5)
    expect(a.size).toBe(5000)
    expect(a.size).toBeGreaterThan(last)
    last = a.size
    for (let i = 0; i < 4; i++) a.record(5)
    expect(a.size).toBe(last)
  })

  it('shrinks while sends are slow, down to the minimum', () => {
    const a = new AdaptiveBatchSize(opts, 5000, 4)
    for (let i = 0; i < 4; i++) a.record(200)
    expect(a.size).toBeLessThan(5000)
    for (let i = 0; i < 4 * 40; i++) a.record(200)
    expect(a.size).toBe(100)
  })

  it('holds inside the band and judges by the median, not one outlier', () => {
    const a = new AdaptiveBatchSize(opts, 1000, 4)
    a.record(40)
    a.record(30)
    a.record(1000)
    a.record(35)
    expect(a.size).toBe(1000)
  })
})

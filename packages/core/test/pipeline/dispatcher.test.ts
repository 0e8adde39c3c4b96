import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createMetricsBuffer, MetricSlot } from '../../src/metrics/layout.ts'
import { MetricsWriter } from '../../src/metrics/writer.ts'
import type { CircuitStateName } from '../../src/pipeline/circuit-breaker.ts'
import { Dispatcher } from '../../src/pipeline/dispatcher.ts'
import { type Flight, newFlight } from '../../src/pipeline/flight.ts'
import type { PipelineToHost } from '../../src/pipeline/protocol.ts'
import { Slab } from '../../src/pipeline/slab-pool.ts'
import { resolveOptions } from '../../src/queue/options.ts'
import type { QueueOptions } from '../../src/queue/types.ts'
import { fillRaw, rawItems } from './slab-kit.ts'

// The dispatcher on its in-thread transport: the test plays the host,
// answering the `send` messages it posts; retries run on fake timers.
beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

type Send = Extract<PipelineToHost, { type: 'send' }>

function setup(options: Partial<QueueOptions> = {}) {
  const config = resolveOptions({
    send: async () => {},
    retryInitialDelayMs: 100,
    retryMaxDelayMs: 1000,
    ...options,
  } as QueueOptions)
  const metrics = new MetricsWriter(createMetricsBuffer())
  const posted: PipelineToHost[] = []
  const settled: Flight[] = []
  const outcomes: Array<{ success: boolean; backPressure: boolean }> = []
  const deadLetters: Array<{ items: string[]; count: number; reason: string; attempts: number }> = []
  const circuit: CircuitStateName[] = []
  let retrying = 0
  const dispatcher = new Dispatcher(config, metrics, undefined, {
    post: (msg) => posted.push(msg),
    settled: (flight) => settled.push(flight),
    outcome: (_ms, success, backPressure) => outcomes.push({ success, backPressure }),
    retrying: () => retrying++,
    circuit: (state) => circuit.push(state),
    deadLetter: (bytes, count, reason, attempts) =>
      deadLetters.push({ items: rawItems(bytes), count, reason, attempts }),
  })
  const sends = (): Send[] => posted.filter((m): m is Send => m.type === 'send')
  const slab = (id: number, items: string[]): Flight => newFlight(id, fillRaw(new Slab(4096), items))
  return {
    dispatcher,
    metrics,
    posted,
    settled,
    outcomes,
    deadLetters,
    circuit,
    sends,
    slab,
    retrying: () => retrying,
  }
}

describe('Dispatcher', () => {
  it('a delivered batch settles and counts as sent', async () => {
    const t = setup()
    const s = t.slab(1, ['a', 'b', 'c'])
    t.dispatcher.send(s)
    expect(t.sends()).toMatchObject([{ batchId: 1, attempt: 1, count: 3 }])
    expect(t.metrics.get(MetricSlot.IN_FLIGHT_BATCHES)).toBe(1)
    t.dispatcher.hostResult(1, 1)
    expect(t.settled).toEqual([s])
    expect(t.outcomes).toEqual([{ success: true, backPressure: false }])
    expect(t.metrics.get(MetricSlot.SENT)).toBe(3)
    expect(t.metrics.get(MetricSlot.BATCHES_SENT)).toBe(1)
    expect(t.metrics.get(MetricSlot.IN_FLIGHT_BATCHES)).toBe(0)
  })

  it('partial failure: dead-letters permanent items by reason, retries only the others after a backoff', async () => {
    const t = setup()
    const s = t.slab(1, ['a', 'b', 'c', 'd'])
    t.dispatcher.send(s)
    t.dispatcher.hostResult(1, 1, [
      { index: 0, retryable: false, reason: 'bad' },
      { index: 2, reason: 'busy', status: 503 },
      { index: 3, retryable: false, reason: 'bad' },
    ])
    expect(t.deadLetters).toEqual([
      { items: ['a', 'd'], count: 2, reason: 'permanent failure: bad', attempts: 1 },
    ])
    expect(t.posted.filter((m) => m.type === 'deadLetter')).toHaveLength(1)
    expect(t.outcomes).toEqual([{ success: false, backPressure: true }])
    expect(t.metrics.get(MetricSlot.SENT)).toBe(1)
    expect(t.retrying()).toBe(1)
    expect(s.retrying).toBe(true)
    expect(rawItems(s.slab.view())).toEqual(['c'])
    expect(t.sends()).toHaveLength(1)
    // Full jitter below the first backoff cap (retryInitialDelayMs).
    await vi.advanceTimersByTimeAsync(100)
    expect(t.sends()).toMatchObject([{ attempt: 1 }, { batchId: 1, attempt: 2, count: 1 }])
    t.dispatcher.hostResult(1, 2)
    expect(t.settled).toEqual([s])
    expect(t.metrics.get(MetricSlot.SENT)).toBe(2)
  })

  it('waits at least the retryAfterMs the target asked for', async () => {
    const t = setup()
    t.dispatcher.send(t.slab(1, ['a']))
    t.dispatcher.hostResult(1, 1, undefined, { name: 'SendError', message: 'HTTP 429', retryAfterMs: 700 })
    await vi.advanceTimersByTimeAsync(699)
    expect(t.sends()).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(t.sends()).toHaveLength(2)
  })

  it('a permanent whole-batch failure dead-letters every item at once', () => {
    const t = setup()
    const s = t.slab(1, ['a', 'b'])
    t.dispatcher.send(s)
    t.dispatcher.hostResult(1, 1, undefined, { name: 'SendError', message: 'HTTP 400', retryable: false })
    expect(t.deadLetters).toEqual([
      { items: ['a', 'b'], count: 2, reason: 'permanent failure: HTTP 400', attempts: 1 },
    ])
    expect(t.settled).toEqual([s])
    expect(t.retrying()).toBe(0)
    expect(t.metrics.get(MetricSlot.ERRORS)).toBe(1)
    expect(t.metrics.get(MetricSlot.DEAD_LETTERED)).toBe(2)
  })

  it('gives up after maxAttempts with the last reason', async () => {
    const t = setup({ maxAttempts: 2 })
    const s = t.slab(1, ['a'])
    t.dispatcher.send(s)
    t.dispatcher.hostResult(1, 1, undefined, { name: 'SendError', message: 'HTTP 503' })
    await vi.advanceTimersByTimeAsync(1000)
    t.dispatcher.hostResult(1, 2, undefined, { name: 'SendError', message: 'HTTP 502' })
    expect(t.deadLetters).toEqual([
      { items: ['a'], count: 1, reason: 'gave up after 2 attempts: SendError: HTTP 502', attempts: 2 },
    ])
    expect(t.settled).toEqual([s])
  })

  it('a misconfigured failure is reported once per run and trips the circuit', () => {
    const t = setup({ circuitBreaker: true })
    const error = { name: 'SendError', message: 'certificate', misconfigured: true }
    t.dispatcher.send(t.slab(1, ['a']))
    t.dispatcher.send(t.slab(2, ['b']))
    t.dispatcher.hostResult(1, 1, undefined, error)
    t.dispatcher.hostResult(2, 1, undefined, error)
    expect(t.posted.filter((m) => m.type === 'misconfigured')).toEqual([
      { __vq: 1, type: 'misconfigured', error },
    ])
    expect(t.circuit).toEqual(['open'])
    // While open, a new batch is parked, not sent.
    t.dispatcher.send(t.slab(3, ['c']))
    expect(t.dispatcher.parked).toBe(1)
    expect(t.sends().map((m) => m.batchId)).toEqual([1, 2])
  })

  it('close stops retries and ignores later answers', async () => {
    const t = setup()
    t.dispatcher.send(t.slab(1, ['a']))
    t.dispatcher.send(t.slab(2, ['b']))
    t.dispatcher.hostResult(1, 1, undefined, { name: 'SendError', message: 'HTTP 503' })
    expect(await t.dispatcher.close(0)).toEqual([])
    expect(await t.dispatcher.close(0)).toEqual([])
    t.dispatcher.hostResult(2, 1)
    await vi.advanceTimersByTimeAsync(5000)
    expect(t.sends()).toHaveLength(2)
    expect(t.settled).toEqual([])
  })
})

/**
 * Backpressure reaches a decision and follows the target's pace.
 *
 * Before: past the soft limit every `enqueueAsync` slept its own delay (up to
 * maxBackoffMs, growing with the fill), and maxBlockMs bounded one call's wait
 * at the hard limit. A producer awaiting each call into a queue whose target
 * stopped answering crawled (~300 items/s) and took minutes to reach the hard
 * limit of a default lane, so neither maxBlockMs nor fullPolicy applied; a
 * target that trickled reset every call's wait, so none ever failed.
 *
 * Now: the producer is paced to the lane's measured drain rate; a lane that
 * does not drain is not paced (it fills to the hard limit, where fullPolicy
 * decides); and maxBlockMs bounds the producer's whole held-back episode.
 * No test asserts a duration: outcomes, counts, and generous bounded waits.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { BackpressureError, createQueue, type Queue, QueueFullError } from '@vinequeue/core'
import { afterEach, describe, expect, it } from 'vitest'
import { waitFor } from '../helpers.ts'

const ITEM = 'x'.repeat(90) // ~96 lane bytes per record
const HELD_PRODUCER = new URL('../fixtures/held-producer.mjs', import.meta.url)

/** A bound no run of the fixed code comes near; the old code never finished within it. */
const GENEROUS_MS = 30_000

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

/** An in-thread target that answers nothing until `open()` (then everything, at once). */
function stalledTarget(): {
  send: (batch: { count: number }) => Promise<undefined>
  open: () => void
  delivered: () => number
} {
  let release!: () => void
  const gate = new Promise<void>((r) => {
    release = r
  })
  let delivered = 0
  return {
    send: async (batch) => {
      await gate
      delivered += batch.count
      return undefined
    },
    open: release,
    delivered: () => delivered,
  }
}

/** An in-thread target that takes `itemsPerSecond`: each batch answers after count / rate. */
function slowTarget(itemsPerSecond: () => number): {
  send: (batch: { count: number; items(): unknown[] }) => Promise<undefined>
  items: unknown[]
} {
  const items: unknown[] = []
  return {
    items,
    send: async (batch) => {
      const got = batch.items()
      await new Promise((r) => setTimeout(r, (batch.count / itemsPerSecond()) * 1000))
      items.push(...got)
      return undefined
    },
  }
}

async function started(options: Parameters<typeof createQueue>[0], open?: () => void): Promise<Queue> {
  // Small items: maxItemBytes must fit the small lanes some tests use.
  const q = createQueue({ maxItemBytes: 4096, ...options })
  cleanups.push(async () => {
    open?.()
    await q.stop({ timeoutMs: 2000 })
  })
  await q.start()
  return q
}

/** Awaits each call, as a request handler would, until one fails or returns false. */
async function produceUntilRefused(
  q: Queue,
  limit: number,
): Promise<{ accepted: number; error?: unknown; dropped: boolean }> {
  let accepted = 0
  try {
    while (accepted < limit) {
      if (!(await q.enqueueAsync({ n: accepted, s: ITEM }))) return { accepted, dropped: true }
      accepted++
    }
  } catch (error) {
    return { accepted, error, dropped: false }
  }
  return { accepted, dropped: false }
}

/** Runs `work` against a generous bound: settles to 'timeout' if the bound passes first. */
async function bounded<T>(work: Promise<T>): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<'timeout'>((r) => {
    timer = setTimeout(() => r('timeout'), GENEROUS_MS)
  })
  try {
    return await Promise.race([work, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * A queue on a stalled target (batches of 100, 2 in flight, `options` on top), `watch`ed
 * before it is fed, then fed until a call is refused (within the generous bound).
 */
async function refusedOnStall(
  options: Partial<Parameters<typeof createQueue>[0]>,
  watch?: (q: Queue) => void,
): Promise<{
  q: Queue
  target: ReturnType<typeof stalledTarget>
  result: Awaited<ReturnType<typeof produceUntilRefused>>
}> {
  const target = stalledTarget()
  const q = await started(
    { send: target.send, maxBatchSize: 100, maxInFlightBatches: 2, ...options },
    target.open,
  )
  watch?.(q)
  const result = await bounded(produceUntilRefused(q, 10_000_000))
  expect(result).not.toBe('timeout')
  if (result === 'timeout') throw new Error('no call was refused within the bound')
  return { q, target, result }
}

describe('a stalled target', () => {
  it("'block': the lane reaches the hard limit and the producer gets BackpressureError after maxBlockMs", async () => {
    const events: boolean[] = []
    const { q, target, result } = await refusedOnStall({ flushIntervalMs: 5, maxBlockMs: 1000 }, (q) =>
      q.on('backpressure', (active) => events.push(active)),
    )
    expect(result.error).toBeInstanceOf(BackpressureError)
    expect((result.error as BackpressureError).waitedMs).toBeGreaterThanOrEqual(1000)
    // The lane is at its hard limit (one more record would not fit).
    const capacity = 8 * 1024 * 1024
    expect(q.metrics().memoryQueueBytes).toBeGreaterThan(0.95 * capacity - 200)
    // Still held back: the next call is told at once, the producer is not reset by a new call.
    const again = await q.enqueueAsync({ n: 'again', s: ITEM }).catch((e) => e)
    expect(again).toBeInstanceOf(BackpressureError)
    expect(again.waitedMs).toBeGreaterThanOrEqual(1000)
    expect(q.metrics().rejectedTotal).toBe(2)
    await waitFor(() => events.includes(true))
    // Nothing accepted is lost once the target answers.
    target.open()
    await q.drain()
    expect(target.delivered()).toBe(result.accepted)
    expect(q.metrics().backoffMs).toBe(0)
  })

  it("'dropNewest': the lane fills to the hard limit and new items are dropped, counted", async () => {
    const { q, result } = await refusedOnStall({ fullPolicy: 'dropNewest' })
    expect(result.dropped).toBe(true)
    expect(q.metrics().droppedByReason.dropNewest).toBe(1)
  })

  it("'reject': the lane fills to the hard limit and the producer gets QueueFullError", async () => {
    const { result } = await refusedOnStall({ fullPolicy: 'reject' })
    expect(result.error).toBeInstanceOf(QueueFullError)
  })

  it('a producer thread is told too (pacing needs nothing but its lane)', async () => {
    const target = stalledTarget()
    const q = await started(
      { send: target.send, maxBatchSize: 100, maxInFlightBatches: 2, maxBlockMs: 1000 },
      target.open,
    )
    const worker = new Worker(HELD_PRODUCER)
    cleanups.push(() => worker.terminate())
    const done = new Promise<{ accepted: number; code?: string; waitedMs?: number }>((resolve, reject) => {
      worker.once('message', resolve)
      worker.once('error', reject)
    })
    worker.postMessage({ handle: q.producerPort(), count: 10_000_000 })
    const result = await bounded(done)
    expect(result).not.toBe('timeout')
    if (result === 'timeout') return
    expect(result.code).toBe('VQ_BACKPRESSURE')
    expect(result.waitedMs).toBeGreaterThanOrEqual(1000)
    target.open()
    await q.drain()
    expect(target.delivered()).toBe(result.accepted)
  })
})

describe("a stalled target, fullPolicy 'spill'", () => {
  it('the log takes the overflow: the producer is paced to what the log takes, never told', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vq-bp-spill-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const target = stalledTarget()
    const q = await started(
      {
        send: target.send,
        ringBytes: 256 * 1024,
        maxBatchSize: 100,
        maxInFlightBatches: 2,
        flushIntervalMs: 5,
        // Far shorter than the run (~2.5 s on a quiet machine), yet long enough that a
        // busy machine's scheduling gaps do not reach it: the held-back clock must keep
        // restarting while the log drains.
        maxBlockMs: 500,
        fullPolicy: 'spill',
        wal: { dir, syncMode: 'none' },
      },
      target.open,
    )
    // ~160 lanes' worth: far more than memory holds.
    const total = 400_000
    const result = await bounded(produceUntilRefused(q, total))
    expect(result).not.toBe('timeout')
    if (result === 'timeout') return
    expect(result.error).toBeUndefined()
    expect(result.accepted).toBe(total)
    expect(q.metrics().walSpilledTotal).toBeGreaterThan(total / 2)
    expect(q.metrics().pacedTotal).toBeGreaterThan(0)
    target.open()
    await q.drain()
    expect(target.delivered()).toBe(total)
  })
})

describe('a target that trickles', () => {
  it('a trickle far below the lane does not reset the bound: BackpressureError', async () => {
    // 100 items/s; the lane's soft-to-hard span is ~1,600 records: far more than a
    // second's trickle, so the producer is held back, not paced to a live rate.
    const target = slowTarget(() => 100)
    const q = await started({
      send: target.send,
      ringBytes: 1024 * 1024,
      maxBatchSize: 10,
      maxInFlightBatches: 1,
      flushIntervalMs: 5,
      maxBlockMs: 1000,
    })
    const result = await bounded(produceUntilRefused(q, 10_000_000))
    expect(result).not.toBe('timeout')
    if (result === 'timeout') return
    expect(result.error).toBeInstanceOf(BackpressureError)
    expect(target.items.length).toBeGreaterThan(0)
  })
})

describe('a target at a tenth of the producer', () => {
  it('the producer is paced to the drain rate: every item delivered, no error over several maxBlockMs', async () => {
    // The producer's own rate into a target that answers at once, on this machine now.
    const fast = slowTarget(() => Number.POSITIVE_INFINITY)
    const probe = await started({ send: fast.send, ringBytes: 256 * 1024, maxBatchSize: 100 })
    const warm = performance.now()
    for (let n = 0; n < 20_000; n++) await probe.enqueueAsync({ n, s: ITEM })
    const producerRate = 20_000 / ((performance.now() - warm) / 1000)
    await probe.drain()

    const targetRate = producerRate / 10
    const target = slowTarget(() => targetRate)
    const maxBlockMs = 1000
    const q = await started({
      send: target.send,
      ringBytes: 256 * 1024,
      maxBatchSize: 100,
      maxInFlightBatches: 1,
      flushIntervalMs: 5,
      maxBlockMs,
    })
    const events: boolean[] = []
    q.on('backpressure', (active) => events.push(active))
    let maxBackoff = 0
    const poll = setInterval(() => {
      maxBackoff = Math.max(maxBackoff, q.metrics().backoffMs)
    }, 5)
    cleanups.push(() => clearInterval(poll))
    // About four maxBlockMs of the target's time.
    const total = Math.max(20_000, Math.round(targetRate * 4))
    const result = await bounded(produceUntilRefused(q, total))
    clearInterval(poll)
    expect(result).not.toBe('timeout')
    if (result === 'timeout') return
    expect(result.error).toBeUndefined()
    expect(result.accepted).toBe(total)
    await q.drain()
    expect(target.items).toHaveLength(total)
    expect(target.items.map((x: any) => x.n)).toEqual([...Array(total).keys()])
    const m = q.metrics()
    expect(m.rejectedTotal).toBe(0)
    // Paced: the calls that slept are few (a sleep carries the schedule of many calls),
    // where a per-call delay would have slept on every call past the soft limit.
    expect(m.pacedTotal).toBeGreaterThan(0)
    expect(m.pacedTotal).toBeLessThan(total / 4)
    expect(events).toContain(true)
    expect(maxBackoff).toBeGreaterThan(0)
    expect(maxBackoff).toBeLessThanOrEqual(50)
    expect(m.backoffMs).toBe(0)
  })
})

describe('a target that recovers', () => {
  it('stalls, then answers: every item delivered, no error', async () => {
    const target = stalledTarget()
    const q = await started(
      {
        send: target.send,
        ringBytes: 256 * 1024,
        maxBatchSize: 100,
        maxInFlightBatches: 2,
        maxBlockMs: 10_000,
      },
      target.open,
    )
    const timer = setTimeout(target.open, 300)
    cleanups.push(() => clearTimeout(timer))
    const total = 50_000
    const result = await bounded(produceUntilRefused(q, total))
    expect(result).not.toBe('timeout')
    if (result === 'timeout') return
    expect(result.error).toBeUndefined()
    await q.drain()
    expect(target.delivered()).toBe(total)
    expect(q.metrics().rejectedTotal).toBe(0)
  })

  it('stalls, then answers slowly: paced to the new rate, every item delivered, no error', async () => {
    let rate = 0
    const target = slowTarget(() => rate)
    // A rate of 0 is an answer after Infinity ms: setTimeout fires at once for it, so
    // the stall is a gate that opens into the slow rate.
    const gate = stalledTarget()
    const send = async (batch: { count: number; items(): unknown[] }): Promise<undefined> => {
      await gate.send(batch)
      return target.send(batch)
    }
    const q = await started(
      { send, ringBytes: 256 * 1024, maxBatchSize: 100, maxInFlightBatches: 2, maxBlockMs: 10_000 },
      gate.open,
    )
    const timer = setTimeout(() => {
      rate = 20_000
      gate.open()
    }, 300)
    cleanups.push(() => clearTimeout(timer))
    const total = 40_000
    const result = await bounded(produceUntilRefused(q, total))
    expect(result).not.toBe('timeout')
    if (result === 'timeout') return
    expect(result.error).toBeUndefined()
    await q.drain()
    expect(target.items).toHaveLength(total)
    expect(q.metrics().pacedTotal).toBeGreaterThan(0)
  })
})

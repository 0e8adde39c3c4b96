import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createQueue, type Queue } from '@vinequeue/core'
import { afterEach, describe, expect, it } from 'vitest'
import { readLines, tempDir, waitFor } from '../helpers.ts'

const closingSender = new URL('../fixtures/closing-sender.mjs', import.meta.url)

const cleanups: Array<() => void> = []
const queues: Queue[] = []
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.stop({ timeoutMs: 500 })))
  for (const c of cleanups.splice(0)) c()
})
function dir(): string {
  const t = tempDir()
  cleanups.push(t.cleanup)
  return t.dir
}

describe('sender lifecycle', () => {
  it('stop() calls close() once in every sender thread that built a sender', async () => {
    const file = join(dir(), 'lifecycle')
    const q = createQueue({
      sender: { module: closingSender, options: { file } },
      senderThreads: 3,
      maxBatchSize: 1,
      flushIntervalMs: 1,
    })
    await q.start()
    for (let i = 0; i < 60; i++) q.enqueue({ i }) // 60 one-item batches, 5 ms each: spread over the threads
    await q.drain()
    const report = await q.stop()
    expect(report.timedOut).toBe(false)
    const lines = readFileSync(file, 'utf8').trim().split('\n')
    const opened = lines.filter((l) => l.startsWith('opened')).map((l) => l.split(' ')[1])
    const closed = lines.filter((l) => l.startsWith('closed')).map((l) => l.split(' ')[1])
    expect(opened.length).toBeGreaterThanOrEqual(1)
    expect(closed.sort()).toEqual(opened.sort())
    expect(new Set(closed).size).toBe(closed.length)
  })

  it('a close() that throws is reported as an error event; stop() still resolves', async () => {
    const file = join(dir(), 'lifecycle')
    const q = createQueue({
      sender: { module: closingSender, options: { file, closeThrows: true } },
      senderThreads: 2,
    })
    const errors: Error[] = []
    q.on('error', (e) => errors.push(e))
    await q.start()
    const report = await q.stop()
    expect(report.timedOut).toBe(false)
    const opened = readFileSync(file, 'utf8').trim().split('\n')
    expect(errors).toHaveLength(opened.length)
    expect(errors[0]!.message).toMatch(/close failed in thread/)
  })
})

describe('circuit breaker', () => {
  it('opens under a sustained outage: only probes reach the target while open; closes after recovery; every item arrives once', async () => {
    let down = true
    const calls: Array<{ at: number; down: boolean }> = []
    const seen = new Map<number, number>()
    const q = createQueue({
      send: async (batch) => {
        calls.push({ at: Date.now(), down })
        if (down) throw new Error('503 from the target')
        for (const { i } of batch.items() as Array<{ i: number }>) seen.set(i, (seen.get(i) ?? 0) + 1)
      },
      maxBatchSize: 10,
      flushIntervalMs: 5,
      retryInitialDelayMs: 5,
      retryMaxDelayMs: 20,
      circuitBreaker: { minimumRequests: 4, failureRateThreshold: 0.5, resetTimeoutMs: 300, windowMs: 5000 },
    })
    queues.push(q)
    const states: string[] = []
    q.on('circuit', (s) => states.push(s))
    await q.start()
    for (let i = 0; i < 200; i++) q.enqueue({ i })
    await waitFor(() => q.metrics().circuitState === 'open')
    expect(q.health().reasons.join()).toMatch(/circuit open/)
    const openedAt = Date.now()
    await new Promise((r) => setTimeout(r, 1000)) // about three reset timeouts
    const whileOpen = calls.filter((c) => c.at > openedAt + 5)
    // Nothing but probes: one per half-open period (resetTimeoutMs 300 ms, 1 probe each).
    expect(whileOpen.length).toBeGreaterThanOrEqual(1)
    expect(whileOpen.length).toBeLessThanOrEqual(4)
    expect(q.metrics().circuitProbesTotal).toBe(whileOpen.length)
    down = false
    await q.drain()
    expect(q.metrics().circuitState).toBe('closed')
    expect(seen.size).toBe(200)
    for (const n of seen.values()) expect(n).toBe(1)
    expect(states[0]).toBe('open')
    expect(states.at(-1)).toBe('closed')
    expect(states).toContain('half-open')
    expect(q.metrics().circuitOpensTotal).toBeGreaterThanOrEqual(1)
  })

  it("whileOpen 'reject': enqueue throws CircuitOpenError while the circuit is open", async () => {
    let down = true
    const q = createQueue({
      send: async () => {
        if (down) throw new Error('down')
      },
      maxBatchSize: 1,
      flushIntervalMs: 1,
      retryInitialDelayMs: 5,
      retryMaxDelayMs: 10,
      circuitBreaker: { minimumRequests: 3, resetTimeoutMs: 200, whileOpen: 'reject' },
    })
    queues.push(q)
    await q.start()
    for (let i = 0; i < 5; i++) q.enqueue({ i })
    await waitFor(() => q.metrics().circuitState === 'open')
    expect(() => q.enqueue({ i: 99 })).toThrow(expect.objectContaining({ code: 'VQ_CIRCUIT_OPEN' }))
    await expect(q.enqueueAsync({ i: 99 })).rejects.toMatchObject({ code: 'VQ_CIRCUIT_OPEN' })
    const rejected = q.metrics().rejectedTotal
    expect(rejected).toBe(2)
    down = false
    await waitFor(() => q.metrics().circuitState === 'closed')
    expect(q.enqueue({ i: 100 })).toBe(true)
    await q.drain()
    expect(q.metrics().sentTotal).toBe(6)
  })
})

describe('dead letters', () => {
  it('deadLetterFile: every dead-lettered item is one NDJSON line with its reason and attempts', async () => {
    const file = join(dir(), 'dead.ndjson')
    const q = createQueue({
      send: async (batch) => ({
        failed: (batch.items() as Array<{ bad?: boolean }>).flatMap((item, index) =>
          item.bad ? [{ index, retryable: false, reason: 'rejected by target' }] : [],
        ),
      }),
      deadLetterFile: file,
      flushIntervalMs: 5,
    })
    queues.push(q)
    await q.start()
    q.enqueue({ i: 1 })
    q.enqueue({ i: 2, bad: true })
    q.enqueueRaw(new TextEncoder().encode('raw bytes'))
    q.enqueue({ i: 3, bad: true })
    await q.drain()
    await q.stop()
    const lines = readLines(file)
    expect(lines.map((l) => l.item)).toEqual([
      { i: 2, bad: true },
      { i: 3, bad: true },
    ])
    expect(lines[0]).toMatchObject({ reason: 'permanent failure: rejected by target', attempts: 1 })
    expect(Date.parse(lines[0].at)).not.toBeNaN()
    expect(q.metrics().deadLetteredTotal).toBe(2)
  })

  it('items of one batch rejected for different reasons: one dead letter per reason, each item with its own', async () => {
    const dead: Array<{ items: unknown[]; reason: string }> = []
    const q = createQueue({
      send: async (batch) => ({
        failed: (batch.items() as Array<{ why?: string }>).flatMap((item, index) =>
          item.why ? [{ index, retryable: false, reason: item.why }] : [],
        ),
      }),
      flushIntervalMs: 5,
      onDeadLetter: (d) => dead.push(d),
    })
    queues.push(q)
    await q.start()
    q.enqueue({ i: 1, why: 'too big' })
    q.enqueue({ i: 2 })
    q.enqueue({ i: 3, why: 'bad schema' })
    q.enqueue({ i: 4, why: 'too big' })
    await q.drain()
    const byReason = Object.fromEntries(
      dead.map((d) => [d.reason, (d.items as Array<{ i: number }>).map((x) => x.i)]),
    )
    expect(byReason).toEqual({
      'permanent failure: too big': [1, 4],
      'permanent failure: bad schema': [3],
    })
    expect(q.metrics().deadLetteredTotal).toBe(3)
    expect(q.metrics().sentTotal).toBe(1)
  })

  it('maxRetryAgeMs: a batch still failing after that long is dead-lettered, not retried forever', async () => {
    const dead: unknown[] = []
    const q = createQueue({
      send: async () => {
        throw new Error('always down')
      },
      circuitBreaker: false,
      maxRetryAgeMs: 200,
      retryInitialDelayMs: 10,
      retryMaxDelayMs: 20,
      flushIntervalMs: 5,
      onDeadLetter: (d) => dead.push(...d.items),
    })
    queues.push(q)
    await q.start()
    q.enqueue({ i: 1 })
    await waitFor(() => dead.length === 1)
    expect(q.metrics().retriesTotal).toBeGreaterThan(1)
  })
})

import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createQueue, type DeadLetter, type Queue } from '@vinequeue/core'
import { afterEach, describe, expect, it } from 'vitest'
import { readLines, recordingSender, tempDir } from '../helpers.ts'

// Sender module failure modes, one test each: the fixture fails the first
// attempt of every batch in the given way; every item must still arrive.
const cleanups: Array<() => void> = []
const queues: Queue[] = []
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.stop({ timeoutMs: 2000 })))
  for (const c of cleanups.splice(0)) c()
})

function poolQueue(
  fault: string | undefined,
  extra: Record<string, unknown> = {},
): { q: Queue; file: string } {
  const { dir, cleanup } = tempDir()
  cleanups.push(cleanup)
  const file = join(dir, 'delivered.ndjson')
  const q = createQueue({
    sender: { module: recordingSender, options: { file, fault } },
    senderThreads: 1,
    senderConcurrency: 2,
    maxBatchSize: 50,
    flushIntervalMs: 10,
    retryInitialDelayMs: 5,
    retryMaxDelayMs: 20,
    ...extra,
  })
  queues.push(q)
  return { q, file }
}

function expectAllOnce(file: string, n: number): void {
  const ids = readLines<{ i: number }>(file).map((x) => x.i)
  expect(ids).toHaveLength(n)
  expect(new Set(ids).size).toBe(n)
}

describe('sender module failures lose no batch', () => {
  it('a sender that throws: the batch is retried and counted', async () => {
    const { q, file } = poolQueue('throw')
    await q.start()
    for (let i = 0; i < 200; i++) q.enqueue({ i })
    await q.drain()
    expectAllOnce(file, 200)
    const m = q.metrics()
    expect(m.sentTotal).toBe(200)
    expect(m.errorsTotal).toBe(4)
    expect(m.retriesTotal).toBe(4)
    expect(m.deadLetteredTotal).toBe(0)
  })

  it('a sender whose thread exits: the batch is retried on a new thread and counted', async () => {
    const { q, file } = poolQueue('exit', { senderConcurrency: 1 })
    await q.start()
    for (let i = 0; i < 100; i++) q.enqueue({ i })
    await q.drain()
    expectAllOnce(file, 100)
    const m = q.metrics()
    expect(m.senderFailuresTotal).toBeGreaterThanOrEqual(2)
    expect(m.retriesTotal).toBe(m.senderFailuresTotal)
    expect(m.sentTotal).toBe(100)
  })

  it('a send that never settles: it times out at sendTimeoutMs and the batch is retried', async () => {
    const { q, file } = poolQueue('hang', { sendTimeoutMs: 200, senderConcurrency: 1 })
    await q.start()
    for (let i = 0; i < 100; i++) q.enqueue({ i })
    await q.drain()
    expectAllOnce(file, 100)
    const m = q.metrics()
    expect(m.timeoutsTotal).toBeGreaterThanOrEqual(2)
    expect(m.senderFailuresTotal).toBe(0) // the thread kept running: nothing terminated
    expect(m.sentTotal).toBe(100)
  })

  it('a send that blocks its thread: the watchdog terminates the thread and the batch is retried on a new one', async () => {
    const { q, file } = poolQueue('block', { sendTimeoutMs: 200, senderConcurrency: 2 })
    await q.start()
    for (let i = 0; i < 100; i++) q.enqueue({ i })
    await q.drain()
    expectAllOnce(file, 100)
    const m = q.metrics()
    // Per terminated thread: its stuck send is a timeout; a send queued behind it there, a thread failure.
    expect(m.timeoutsTotal).toBeGreaterThanOrEqual(1)
    expect(m.timeoutsTotal + m.senderFailuresTotal).toBeGreaterThanOrEqual(2)
    expect(m.sentTotal).toBe(100)
  })

  it('senderConcurrency sends run at once on one sender thread (regression: an abortable piscina task only goes to an idle thread)', async () => {
    const { dir, cleanup } = tempDir()
    cleanups.push(cleanup)
    const file = join(dir, 'most')
    const q = createQueue({
      sender: { module: new URL('../fixtures/concurrency-sender.mjs', import.meta.url), options: { file } },
      senderThreads: 1,
      senderConcurrency: 4,
      maxBatchSize: 10,
      flushIntervalMs: 5,
    })
    queues.push(q)
    await q.start()
    for (let i = 0; i < 400; i++) q.enqueue({ i })
    await q.drain()
    expect(q.metrics().sentTotal).toBe(400)
    const most = Math.max(...readFileSync(file, 'utf8').trim().split('\n').map(Number))
    expect(most).toBe(4)
  })

  it('a permanent failure dead-letters the batch, counted, with the items', async () => {
    const letters: DeadLetter[] = []
    const { q, file } = poolQueue('permanent', { onDeadLetter: (d: DeadLetter) => letters.push(d) })
    const events: DeadLetter[] = []
    q.on('deadLetter', (d) => events.push(d))
    await q.start()
    for (let i = 0; i < 50; i++) q.enqueue({ i, poison: i === 7 })
    await q.flush()
    for (let i = 50; i < 100; i++) q.enqueue({ i })
    await q.drain()
    expect(q.metrics().deadLetteredTotal).toBe(50)
    expect(letters).toHaveLength(1)
    expect(letters[0]!.items).toHaveLength(50)
    expect(letters[0]!.reason).toMatch(/poison batch/)
    expect(events).toHaveLength(1)
    expectAllOnce(file, 50)
  })

  it('partial success: only failed items are retried; permanent ones dead-lettered', async () => {
    const letters: DeadLetter[] = []
    const { q, file } = poolQueue('partial', { onDeadLetter: (d: DeadLetter) => letters.push(d) })
    await q.start()
    for (let i = 0; i < 300; i++) q.enqueue({ i, poison: i === 4 })
    await q.drain()
    expectAllOnce(file, 299)
    expect(letters.flatMap((d) => d.items)).toEqual([{ i: 4, poison: true }])
    const m = q.metrics()
    expect(m.sentTotal).toBe(299)
    expect(m.deadLetteredTotal).toBe(1)
  })

  it('gives up after maxAttempts and dead-letters the items', async () => {
    const letters: DeadLetter[] = []
    const q = createQueue({
      send: async () => {
        throw new Error('always down')
      },
      maxAttempts: 3,
      retryInitialDelayMs: 1,
      flushIntervalMs: 5,
      onDeadLetter: (d) => letters.push(d),
    })
    queues.push(q)
    await q.start()
    for (let i = 0; i < 10; i++) q.enqueue(i)
    await q.drain()
    expect(letters).toHaveLength(1)
    expect(letters[0]!.attempts).toBe(3)
    expect(letters[0]!.items).toEqual([...Array(10).keys()])
    expect(q.metrics().retriesTotal).toBe(2)
  })

  it('a sender module that cannot be loaded makes start() fail clearly', async () => {
    const q = createQueue({ sender: { module: new URL('./fixtures/does-not-exist.mjs', import.meta.url) } })
    await expect(q.start()).rejects.toMatchObject({
      code: 'VQ_SENDER_LOAD',
      message: expect.stringMatching(/could not be loaded.*does-not-exist/s),
    })
    expect(q.health().status).toBe('down')
  })
})

describe('health while a target fails', () => {
  it('is degraded with the retrying batches named, and ok again once they are delivered', async () => {
    let failing = true
    const q = createQueue({
      send: async () => {
        if (failing) throw new Error('target down')
      },
      flushIntervalMs: 5,
      retryInitialDelayMs: 5,
      retryMaxDelayMs: 20,
    })
    queues.push(q)
    await q.start()
    q.enqueue('x')
    await q.flush()
    const deadline = Date.now() + 10_000
    while (q.metrics().retryingBatches === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 5))
    expect(q.health().status).toBe('degraded')
    expect(q.health().reasons.join()).toMatch(/1 batch\(es\) failing/)
    failing = false
    await q.drain()
    await new Promise((r) => setTimeout(r, 20))
    expect(q.metrics().retryingBatches).toBe(0)
    expect(q.health()).toEqual({ status: 'ok', reasons: [] })
  })
})

/**
 * A send's answer is read in one place (src/sender/outcome.ts) for both ways
 * a sender runs — the sender pool and an in-thread `send`. An answer the
 * contract does not allow (a bad or duplicate `index`, a `null` entry,
 * `failed` that is not an array, a return value that is neither nothing nor
 * `{ failed }`) used to be partly ignored: the whole batch counted as sent,
 * never retried, never dead-lettered, no event. In-thread, `{ failed: 'x' }`
 * crashed the process (`result.failed.map is not a function`). Now the batch
 * fails retryably and an `error` event names the bad entry.
 */
import { join } from 'node:path'
import {
  createQueue,
  type DeadLetter,
  InvalidSendResultError,
  isVineQueueError,
  type Queue,
} from '@vinequeue/core'
import { afterEach, describe, expect, it } from 'vitest'
import { checkSendResult } from '../../src/sender/outcome.ts'
import { readLines, tempDir, waitFor } from '../helpers.ts'

const answerSender = new URL('../fixtures/answer-sender.mjs', import.meta.url)

const queues: Queue[] = []
const cleanups: Array<() => void> = []
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.stop({ timeoutMs: 2000 })))
  for (const c of cleanups.splice(0)) c()
})

const COUNT = 5

/** Answers a batch of COUNT items must not get away with, and what the error must name. */
const malformed: ReadonlyArray<readonly [string, unknown, RegExp]> = [
  ['index as a string', { failed: [{ index: '0' }] }, /failed\[0\]\.index .*the string "0"/],
  [
    'index past the batch',
    { failed: [{ index: 99 }] },
    /failed\[0\]\.index must be an integer from 0 to 4.*99/,
  ],
  ['index equal to the count', { failed: [{ index: COUNT }] }, /failed\[0\]\.index .*number 5/],
  ['fractional index', { failed: [{ index: 0.5 }] }, /failed\[0\]\.index .*0\.5/],
  ['negative index', { failed: [{ index: -1 }] }, /failed\[0\]\.index .*-1/],
  ['NaN index', { failed: [{ index: Number.NaN }] }, /failed\[0\]\.index .*NaN/],
  ['no index', { failed: [{ reason: 'nope' }] }, /failed\[0\]\.index .*undefined/],
  ['a null entry', { failed: [{ index: 1 }, null] }, /failed\[1\] must be an object/],
  ['a duplicate index', { failed: [{ index: 2 }, { index: 2 }] }, /failed\[1\]\.index 2 is listed twice/],
  ['retryable not a boolean', { failed: [{ index: 0, retryable: 'no' }] }, /failed\[0\]\.retryable/],
  ['failed not an array', { failed: 'x' }, /failed must be an array, got the string "x"/],
  ['failed null', { failed: null }, /failed must be an array, got null/],
  ['a string', 'ok', /expected nothing or \{ failed: \[\.\.\.\] \}, got the string "ok"/],
  ['a number', 1, /got number 1/],
  ['true', true, /got boolean true/],
  ['an array', [{ index: 0 }], /got an array of 1/],
]

describe('checkSendResult (the one validation of a send result)', () => {
  it.each(malformed)('refuses %s', (_name, result, why) => {
    const checked = checkSendResult(result, COUNT)
    expect(typeof checked).toBe('string')
    expect(checked).toMatch(why)
  })

  it('accepts nothing, { failed: [] } and well-formed failures, copying only the contract fields', () => {
    expect(checkSendResult(undefined, COUNT)).toEqual([])
    expect(checkSendResult(null, COUNT)).toEqual([])
    expect(checkSendResult({}, COUNT)).toEqual([])
    expect(checkSendResult({ failed: [] }, COUNT)).toEqual([])
    const failed = [
      { index: 4, retryable: false, reason: 'bad', status: 400, extra: () => {} },
      { index: 0, retryAfterMs: 10 },
    ]
    expect(checkSendResult({ failed }, COUNT)).toEqual([
      { index: 4, retryable: false, reason: 'bad', status: 400 },
      { index: 0, retryAfterMs: 10 },
    ])
  })
})

/** Items 0..COUNT-1 in one batch. */
function feed(q: Queue): void {
  for (let i = 0; i < COUNT; i++) q.enqueue({ i })
}

function collectErrors(q: Queue): Error[] {
  const errors: Error[] = []
  q.on('error', (err) => errors.push(err))
  return errors
}

describe('sender pool: a malformed result fails the batch, which is retried', () => {
  it.each(malformed)('%s', async (_name, result, why) => {
    const { dir, cleanup } = tempDir()
    cleanups.push(cleanup)
    const file = join(dir, 'delivered.ndjson')
    const q = createQueue({
      sender: { module: answerSender, options: { file, result } },
      senderThreads: 1,
      maxBatchSize: COUNT,
      flushIntervalMs: 10_000,
      retryInitialDelayMs: 5,
      retryMaxDelayMs: 20,
    })
    queues.push(q)
    const errors = collectErrors(q)
    await q.start()
    feed(q)
    await q.drain()
    // Delivered once, by the retry; the malformed answer counted for nothing.
    expect(readLines<{ i: number }>(file).map((x) => x.i)).toEqual([0, 1, 2, 3, 4])
    const m = q.metrics()
    expect(m.sentTotal).toBe(COUNT)
    expect(m.retriesTotal).toBe(1)
    expect(m.deadLetteredTotal).toBe(0)
    await waitFor(() => errors.length > 0)
    expect(errors[0]).toBeInstanceOf(InvalidSendResultError)
    expect(isVineQueueError(errors[0])).toBe(true)
    expect(errors[0]!.message).toMatch(why)
  })

  it('a function as the result (it cannot even cross the thread) fails the batch too', async () => {
    const { dir, cleanup } = tempDir()
    cleanups.push(cleanup)
    const file = join(dir, 'delivered.ndjson')
    const q = createQueue({
      sender: { module: answerSender, options: { file, mode: 'function-once' } },
      senderThreads: 1,
      maxBatchSize: COUNT,
      retryInitialDelayMs: 5,
    })
    queues.push(q)
    const errors = collectErrors(q)
    await q.start()
    feed(q)
    await q.drain()
    expect(readLines<{ i: number }>(file)).toHaveLength(COUNT)
    expect(q.metrics().sentTotal).toBe(COUNT)
    await waitFor(() => errors.length > 0)
    expect(errors[0]!.message).toMatch(/got a function/)
  })

  it('a sender that always answers malformed: nothing counts as sent; the items are dead-lettered at maxAttempts', async () => {
    const { dir, cleanup } = tempDir()
    cleanups.push(cleanup)
    const deadLetters: DeadLetter[] = []
    const q = createQueue({
      sender: {
        module: answerSender,
        options: { file: join(dir, 'x'), mode: 'always', result: { failed: [{ index: '1' }] } },
      },
      senderThreads: 1,
      maxBatchSize: COUNT,
      maxAttempts: 3,
      retryInitialDelayMs: 5,
      onDeadLetter: (d) => deadLetters.push(d),
    })
    queues.push(q)
    const errors = collectErrors(q)
    await q.start()
    feed(q)
    await q.drain()
    const m = q.metrics()
    expect(m.sentTotal).toBe(0)
    expect(m.deadLetteredTotal).toBe(COUNT)
    expect(deadLetters).toHaveLength(1)
    expect(deadLetters[0]!.items).toEqual([0, 1, 2, 3, 4].map((i) => ({ i })))
    expect(deadLetters[0]!.reason).toMatch(/gave up after 3 attempts: InvalidSendResultError/)
    await waitFor(() => errors.length >= 3)
  })
})

describe('in-thread send: the same validation, and no crash', () => {
  it.each(malformed)('%s', async (_name, result, why) => {
    const delivered: unknown[] = []
    const q = createQueue({
      send: (batch, { attempt }) => {
        if (attempt === 1) return result as never
        delivered.push(...batch.items())
        return undefined
      },
      maxBatchSize: COUNT,
      flushIntervalMs: 10_000,
      retryInitialDelayMs: 5,
      retryMaxDelayMs: 20,
    })
    queues.push(q)
    const errors = collectErrors(q)
    await q.start()
    feed(q)
    await q.drain()
    expect(delivered).toEqual([0, 1, 2, 3, 4].map((i) => ({ i })))
    expect(q.metrics().sentTotal).toBe(COUNT)
    expect(q.metrics().retriesTotal).toBe(1)
    await waitFor(() => errors.length > 0)
    expect(errors[0]).toBeInstanceOf(InvalidSendResultError)
    expect(errors[0]!.message).toMatch(why)
  })

  it('a failure list whose entries carry functions (not cloneable) is copied to the contract fields', async () => {
    const delivered: unknown[] = []
    const deadLetters: DeadLetter[] = []
    const q = createQueue({
      send: (batch) => {
        delivered.push(...batch.items().slice(1))
        return { failed: [{ index: 0, retryable: false, reason: 'no', toString: () => 'x' } as never] }
      },
      maxBatchSize: COUNT,
      onDeadLetter: (d) => deadLetters.push(d),
    })
    queues.push(q)
    await q.start()
    feed(q)
    await q.drain()
    expect(delivered).toHaveLength(COUNT - 1)
    expect(deadLetters.map((d) => d.items)).toEqual([[{ i: 0 }]])
    expect(q.metrics().sentTotal).toBe(COUNT - 1)
  })
})

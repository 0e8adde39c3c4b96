import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
// The compiled modules: the sender threads load the sender-pool entry as
// JavaScript from dist, beside the module that starts them.
import { createMetricsBuffer, MetricSlot } from '../../dist/metrics/layout.js'
import { MetricsWriter } from '../../dist/metrics/writer.js'
import { type Flight, newFlight } from '../../dist/pipeline/flight.js'
import { PoolTransport } from '../../dist/pipeline/pool-transport.js'
import type { ErrorInfo } from '../../dist/pipeline/protocol.js'
import { Slab } from '../../dist/pipeline/slab-pool.js'
import { SenderThreads } from '../../dist/queue/sender-threads.js'
import type { ItemFailure } from '../../dist/sender/types.js'
import { tempDir, waitFor } from '../helpers.ts'
import { fillRaw } from './slab-kit.ts'

interface Answer {
  readonly flight: Flight
  readonly failed: readonly ItemFailure[] | undefined
  readonly error: ErrorInfo | undefined
}

const transports: PoolTransport[] = []
const threadSets: SenderThreads[] = []
const cleanups: Array<() => void> = []
afterEach(async () => {
  await Promise.all(transports.splice(0).map((t) => t.close(1000)))
  await Promise.all(threadSets.splice(0).map((t) => t.close()))
  for (const c of cleanups.splice(0)) c()
})

/**
 * Sender threads started as the queue's thread starts them (SenderThreads),
 * and the pipeline's side of them (PoolTransport), both on this thread: the
 * transport asks for a stuck thread's termination, a thread that exits is
 * replaced and handed to the transport, as between the two real threads.
 */
function pool(fixture: string, options: Record<string, unknown>, sendTimeoutMs = 30_000, senderThreads = 1) {
  const answers: Answer[] = []
  const metrics = new MetricsWriter(createMetricsBuffer())
  const sender = { module: new URL(`../fixtures/${fixture}`, import.meta.url).href, options }
  let transport: PoolTransport | undefined
  const threads = new SenderThreads({ sender, sendTimeoutMs }, (thread) => transport!.addThread(thread))
  threadSets.push(threads)
  transport = new PoolTransport(
    { sender, senderConcurrency: 4, sendTimeoutMs },
    metrics,
    (flight, _startedAt, failed, error) => answers.push({ flight, failed, error }),
    { shared: threads.shared, threads: Array.from({ length: senderThreads }, () => threads.start()) },
    (threadId) => threads.terminate(threadId),
  )
  transports.push(transport)
  return { transport, threads, answers, metrics }
}

function batch(id: number, items: string[]): Flight {
  const flight = newFlight(id, fillRaw(new Slab(4096), items))
  flight.attempt = 1
  return flight
}

describe('PoolTransport', () => {
  it('runs a send on a sender thread and reports its failed items', async () => {
    const failed = [{ index: 1, retryable: false, reason: 'no' }]
    const { transport, threads, answers } = pool('answer-sender.mjs', { mode: 'always', result: { failed } })
    expect(await threads.built).toBeUndefined()
    const flight = batch(1, ['a', 'b'])
    transport.send(flight, 0)
    await waitFor(() => answers.length === 1)
    expect(answers[0]).toEqual({ flight, failed, error: undefined })
  })

  it("the threads' `built` settles with the sender module's load error", async () => {
    const { threads } = pool('no-such-sender.mjs', {})
    expect(await threads.built).toMatchObject({ name: 'SenderLoadError', code: 'VQ_SENDER_LOAD' })
  })

  it.each([
    ['exits mid-send', 'exit', 'sender thread exited while sending'],
    [
      'dies of an error thrown outside send',
      'crash',
      'sender thread failed: Error: thrown from a timer the send started',
    ],
  ])('a thread that %s answers a retryable SenderThreadError', async (_, fault, message) => {
    const { dir, cleanup } = tempDir()
    cleanups.push(cleanup)
    const { transport, threads, answers, metrics } = pool('recording-sender.mjs', {
      fault,
      file: join(dir, 'out'),
    })
    expect(await threads.built).toBeUndefined()
    transport.send(batch(1, ['a']), 0)
    await waitFor(() => answers.length === 1)
    expect(answers[0]!.error).toMatchObject({
      name: 'SenderThreadError',
      code: 'VQ_SEND_FAILED',
      message,
      retryable: true,
    })
    expect(metrics.get(MetricSlot.SENDER_FAILURES)).toBe(1)
  })

  it('the watchdog terminates a thread whose event loop is stuck and answers a timeout', async () => {
    const { dir, cleanup } = tempDir()
    cleanups.push(cleanup)
    const { transport, threads, answers, metrics } = pool(
      'recording-sender.mjs',
      { fault: 'block', file: join(dir, 'out') },
      200,
    )
    expect(await threads.built).toBeUndefined()
    transport.send(batch(1, ['a']), 0)
    await waitFor(() => answers.length === 1)
    expect(answers[0]!.error).toMatchObject({
      name: 'SendTimeoutError',
      code: 'VQ_SEND_TIMEOUT',
      retryable: true,
    })
    expect(metrics.get(MetricSlot.TIMEOUTS)).toBe(1)
    expect(metrics.get(MetricSlot.SENDER_FAILURES)).toBe(0)
  })

  it('close() runs every built sender’s close() and reports what it threw; idempotent', async () => {
    const { dir, cleanup } = tempDir()
    cleanups.push(cleanup)
    const file = join(dir, 'log')
    const ok = pool('closing-sender.mjs', { file })
    expect(await ok.threads.built).toBeUndefined()
    ok.transport.send(batch(1, ['a']), 0)
    await waitFor(() => ok.answers.length === 1)
    expect(await ok.transport.close(5000)).toEqual([])
    expect(await ok.transport.close(5000)).toEqual([])
    expect(readFileSync(file, 'utf8')).toMatch(/^opened (\d+)\nclosed \1\n$/)

    const failing = pool('closing-sender.mjs', { file, closeThrows: true })
    expect(await failing.threads.built).toBeUndefined()
    const errors = await failing.transport.close(5000)
    expect(errors).toHaveLength(1)
    expect(errors[0]!.message).toMatch(/^close failed in thread \d+$/)
  })

  it('close() also closes the sender of a thread that built it while close() waited', async () => {
    const { dir, cleanup } = tempDir()
    cleanups.push(cleanup)
    const file = join(dir, 'log')
    // Two threads: `built` comes from the one that builds at once; the
    // other builds 300 ms later, finds the close already asked for, closes
    // unasked (taking 300 ms longer) while the first one's close() waits for it.
    const { transport, threads } = pool(
      'closing-sender.mjs',
      { file, later: { factoryMs: 300, closeMs: 300 } },
      30_000,
      2,
    )
    expect(await threads.built).toBeUndefined()
    expect(await transport.close(10_000)).toEqual([])
    const lines = readFileSync(file, 'utf8').trim().split('\n')
    const opened = lines.filter((l) => l.startsWith('opened ')).map((l) => l.slice(7))
    const closed = lines.filter((l) => l.startsWith('closed ')).map((l) => l.slice(7))
    expect(opened).toHaveLength(2)
    expect(closed.sort()).toEqual([...opened].sort())
  })
})

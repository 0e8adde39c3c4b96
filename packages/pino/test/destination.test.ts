import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import {
  createQueue,
  InvalidConfigError,
  ItemTooLargeError,
  QueueClosedError,
  type QueueOptions,
  SenderLoadError,
} from '@vinequeue/core'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { type VineQueueDestination, vinequeueDestination } from '../src/index.ts'

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

const decoder = new TextDecoder()

/** A destination whose in-thread sender records every payload as the sender sees it. */
function recorded(options: Partial<QueueOptions> = {}): {
  destination: VineQueueDestination
  payloads: Array<{ raw: boolean; text: string }>
} {
  const payloads: Array<{ raw: boolean; text: string }> = []
  const destination = vinequeueDestination({
    flushIntervalMs: 5,
    send: async (batch) => {
      for (const p of batch.payloads()) payloads.push({ raw: p.raw, text: decoder.decode(p.bytes) })
    },
    ...options,
  })
  cleanups.push(() => destination.close())
  return { destination, payloads }
}

/** The lines pino writes, collected as a plain stream (the reference). */
function collector(): { stream: Writable; lines: string[] } {
  const lines: string[] = []
  const stream = new Writable({
    write(chunk: Buffer, _encoding, cb) {
      lines.push(chunk.toString('utf8'))
      cb()
    },
  })
  return { stream, lines }
}

const flushLogger = (logger: pino.Logger): Promise<void> =>
  new Promise((resolve, reject) => logger.flush((err) => (err ? reject(err) : resolve())))

describe('vinequeueDestination', () => {
  it('hands each pino line to the sender as a raw item, byte for byte, without its newline', async () => {
    const { destination, payloads } = recorded()
    const reference = collector()
    const logger = pino(
      { level: 'debug' },
      pino.multistream([
        { level: 'trace', stream: reference.stream },
        { level: 'trace', stream: destination },
      ]),
    )
    const child = logger.child({ requestId: 'r-1' })
    logger.debug({ n: 1 }, 'debug line')
    logger.trace('below the logger level: never serialized')
    child.info({ user: 'zoë', emoji: '🍇' }, 'with a child binding')
    logger.error(new Error('boom'), 'an error')
    // Longer than the 16 KiB scratch buffer, multi-byte: it grows, nothing is cut.
    logger.warn({ big: '語'.repeat(20_000) }, 'a big line')
    logger.info('after the big line')
    await destination.flush()
    await destination.queue.drain()

    expect(reference.lines).toHaveLength(5)
    expect(payloads.map((p) => p.raw)).toEqual([true, true, true, true, true])
    expect(payloads.map((p) => `${p.text}\n`)).toEqual(reference.lines)
    const levels = payloads.map((p) => (JSON.parse(p.text) as { level: number }).level)
    expect(levels).toEqual([20, 30, 50, 40, 30])
    expect(JSON.parse(payloads[1]!.text)).toMatchObject({ requestId: 'r-1', user: 'zoë', emoji: '🍇' })
    expect((JSON.parse(payloads[3]!.text) as { big: string }).big).toHaveLength(20_000)
  })

  it('works under pino.multistream with per-stream levels; multistream.end() closes the queues', async () => {
    const all = recorded()
    const errors = recorded()
    const streams = pino.multistream([
      { level: 'info', stream: all.destination },
      { level: 'error', stream: errors.destination },
    ])
    const logger = pino({ level: 'trace' }, streams)
    logger.debug('dropped by both streams')
    logger.info('info')
    logger.warn('warn')
    logger.error('error')
    logger.fatal('fatal')
    // multistream has no flush(cb): flush the destinations themselves.
    await Promise.all([all.destination.flush(), errors.destination.flush()])
    await Promise.all([all.destination.queue.drain(), errors.destination.queue.drain()])
    const msgs = (p: Array<{ text: string }>) => p.map((x) => (JSON.parse(x.text) as { msg: string }).msg)
    expect(msgs(all.payloads)).toEqual(['info', 'warn', 'error', 'fatal'])
    expect(msgs(errors.payloads)).toEqual(['error', 'fatal'])

    streams.end()
    const reports = await Promise.all([all.destination.close(), errors.destination.close()])
    expect(reports.map((r) => r?.undeliveredCount)).toEqual([0, 0])
    expect(() => logger.error('after end')).toThrow(QueueClosedError)
  })

  it('with the file sender, the NDJSON file holds exactly the lines pino wrote', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vq-pino-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const path = join(dir, 'app.ndjson')
    const destination = vinequeueDestination({
      sender: { module: import.meta.resolve('@vinequeue/senders/file'), options: { path } },
      senderThreads: 1,
      maxBatchSize: 100,
      flushIntervalMs: 5,
    })
    cleanups.push(() => destination.close())
    const reference = collector()
    // (pino takes a multistream as its second argument only: alone, it would be read as options.)
    const logger = pino(
      {},
      pino.multistream([
        { level: 'info', stream: reference.stream },
        { level: 'info', stream: destination },
      ]),
    )
    for (let i = 0; i < 1000; i++) logger.info({ i, tag: i % 3 === 0 ? 'ü' : 'a' }, 'line %d', i)
    await destination.ready
    await destination.queue.drain()
    await destination.close()
    expect(reference.lines).toHaveLength(1000)
    expect(readFileSync(path, 'utf8')).toBe(reference.lines.join(''))
  })

  it('flush(cb) calls back once the lines are handed on, and with the error when the queue cannot start', async () => {
    const { destination, payloads } = recorded({ flushIntervalMs: 60_000, maxBatchSize: 10_000 })
    const logger = pino(destination)
    logger.info('one')
    logger.info('two')
    await flushLogger(logger)
    // A 60 s linger: only the flush cut this batch.
    await destination.queue.drain()
    expect(payloads).toHaveLength(2)

    const broken = vinequeueDestination({ sender: { module: 'file:///nonexistent/sender.mjs' } })
    cleanups.push(() => broken.close())
    const err = await flushLogger(pino(broken)).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(SenderLoadError)
    await expect(broken.ready).rejects.toBeInstanceOf(SenderLoadError)
  })

  it('a line the queue refuses throws from the log call, or goes to onWriteError', async () => {
    const strict = recorded({ maxItemBytes: 256 })
    expect(() => pino(strict.destination).info({ pad: 'x'.repeat(300) }, 'too big')).toThrow(
      ItemTooLargeError,
    )

    const refused: Array<{ error: Error; line: string }> = []
    const lenient = recorded({ maxItemBytes: 256 })
    const destination = vinequeueDestination({
      queue: lenient.destination.queue,
      onWriteError: (error, line) => refused.push({ error, line }),
    })
    const logger = pino(destination)
    logger.info({ pad: 'x'.repeat(300) }, 'too big')
    logger.info('fits')
    await destination.flush()
    await lenient.destination.queue.drain()
    expect(refused).toHaveLength(1)
    expect(refused[0]!.error).toBeInstanceOf(ItemTooLargeError)
    expect(JSON.parse(refused[0]!.line)).toMatchObject({ msg: 'too big' })
    expect(lenient.payloads.map((p) => (JSON.parse(p.text) as { msg: string }).msg)).toEqual(['fits'])
  })

  it('writes to a queue you pass, and leaves it running at close()', async () => {
    const texts: string[] = []
    const queue = createQueue({
      flushIntervalMs: 5,
      send: async (batch) => {
        for (const p of batch.payloads()) texts.push(decoder.decode(p.bytes))
      },
    })
    cleanups.push(() => queue.stop())
    await queue.start()
    const destination = vinequeueDestination({ queue })
    pino(destination).info('via your queue')
    expect(await destination.close()).toBeUndefined()
    queue.enqueue({ still: 'running' })
    await queue.drain()
    expect(texts).toHaveLength(2)
    expect(JSON.parse(texts[0]!)).toMatchObject({ msg: 'via your queue' })
  })

  it('reports every bad option, its own and the queue’s, in one InvalidConfigError', () => {
    const issuesOf = (fn: () => unknown): readonly string[] => {
      try {
        fn()
      } catch (err) {
        expect(err).toBeInstanceOf(InvalidConfigError)
        return (err as InvalidConfigError).issues ?? []
      }
      throw new Error('no error thrown')
    }
    const issues = issuesOf(() =>
      vinequeueDestination({
        send: async () => {},
        onWriteError: 3 as unknown as () => void,
        maxBatchSize: -1,
        bogus: true,
      } as QueueOptions),
    )
    for (const field of ['onWriteError', 'maxBatchSize', 'bogus']) {
      expect(
        issues.some((i) => i.startsWith(`${field}:`)),
        field,
      ).toBe(true)
    }
    const queue = createQueue({ send: async () => {} })
    const mixed = issuesOf(() => vinequeueDestination({ queue, maxBatchSize: 10 }))
    expect(mixed).toEqual(['queue: cannot be combined with queue options (maxBatchSize)'])
    expect(issuesOf(() => vinequeueDestination({ queue: {} as never }))[0]).toMatch(/^queue: must be/)
  })
})

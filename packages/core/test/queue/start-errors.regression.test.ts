import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { pathToFileURL } from 'node:url'
import {
  createQueue,
  InvalidConfigError,
  NotStartedError,
  type Queue,
  QueueClosedError,
  SenderLoadError,
} from '@vinequeue/core'
import { afterEach, describe, expect, it } from 'vitest'
import { tempDir } from '../helpers.ts'

// What a new user meets: a relative sender path, a sender that does not load
// or refuses its options, wrong encryption keys, calls out of order. Each is
// reported at createQueue, or by start() as what it is.
const cleanups: Array<() => void> = []
const queues: Queue[] = []
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.stop({ timeoutMs: 2000 })))
  for (const c of cleanups.splice(0)) c()
})

function scratch(): string {
  const { dir, cleanup } = tempDir()
  cleanups.push(cleanup)
  return dir
}

function issuesOf(fn: () => unknown): string[] {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidConfigError)
    return [...((err as InvalidConfigError).issues ?? [])]
  }
  throw new Error('expected an InvalidConfigError')
}

/** A sender module written at test time (plain JS: no imports needed). */
function senderFile(dir: string, name: string, source: string): string {
  const file = join(dir, name)
  writeFileSync(file, source)
  return file
}

const okSender = 'export default () => ({ async send() {} })\n'

describe('sender.module paths', () => {
  it('a relative path is resolved against the working directory at createQueue', async () => {
    const dir = scratch()
    const file = senderFile(dir, 'my-sender.mjs', okSender)
    const rel = `./${relative(process.cwd(), file)}`
    const q = createQueue({ sender: { module: rel }, senderThreads: 1 })
    queues.push(q)
    expect(q.options.sender?.module).toBe(pathToFileURL(file).href)
    await q.start()
  })

  it('a relative path that names nothing there is refused at createQueue, pointing at import.meta.resolve', () => {
    const issues = issuesOf(() => createQueue({ sender: { module: './no-such-sender.mjs' } }))
    expect(issues).toHaveLength(1)
    expect(issues[0]).toMatch(
      /sender\.module: "\.\/no-such-sender\.mjs" is resolved against the working directory/,
    )
    expect(issues[0]).toMatch(/import\.meta\.resolve\("\.\/no-such-sender\.mjs"\)/)
  })
})

describe('start() reports a sender that cannot be built as what it is', () => {
  it('a syntax error: SenderLoadError naming the file and line, the SyntaxError as cause', async () => {
    const file = senderFile(
      scratch(),
      'broken.mjs',
      'export default () => ({\n  send() {}\n  oops here\n})\n',
    )
    const q = createQueue({ sender: { module: file }, senderThreads: 1 })
    const err = await q.start().then(
      () => undefined,
      (e: Error) => e,
    )
    expect(err).toBeInstanceOf(SenderLoadError)
    expect((err as SenderLoadError).module).toBe(file)
    expect(err!.message).toContain(`Sender module ${file} could not be loaded: SyntaxError`)
    expect(err!.message).toContain(`(at ${file}:3)`)
    expect((err!.cause as Error).name).toBe('SyntaxError')
    expect(q.health()).toEqual({ status: 'down', reasons: [`start failed: ${err!.message}`] })
  })

  it('a factory that throws on its options: InvalidConfigError, with the factory error as cause', async () => {
    const file = senderFile(
      scratch(),
      'picky.mjs',
      "export default (options) => { if (!options?.url) throw new TypeError('url: required'); return { async send() {} } }\n",
    )
    const q = createQueue({ sender: { module: file, options: {} }, senderThreads: 1 })
    const err = await q.start().then(
      () => undefined,
      (e: Error) => e,
    )
    expect(err).toBeInstanceOf(InvalidConfigError)
    expect(err!.message).toBe(`Sender module ${file} refused its options: url: required`)
    expect((err as InvalidConfigError).issues).toEqual([err!.message])
    expect(err!.cause).toMatchObject({ name: 'TypeError', message: 'url: required' })
  })

  it('a factory that fails otherwise: SenderLoadError', async () => {
    const file = senderFile(
      scratch(),
      'down.mjs',
      "export default async () => { throw new Error('cannot reach the broker') }\n",
    )
    const q = createQueue({ sender: { module: file }, senderThreads: 1 })
    await expect(q.start()).rejects.toMatchObject({
      code: 'VQ_SENDER_LOAD',
      message: `Sender module ${file}: its factory failed: Error: cannot reach the broker`,
    })
  })
})

describe('a start that fails after the pipeline opened its files', () => {
  it('the sender refusing its options once the log and the dead-letter file are open: both are let go', async () => {
    const dir = scratch()
    // The factory takes 300 ms, so the pipeline thread has opened both files well before it refuses.
    const file = senderFile(
      dir,
      'slow-picky.mjs',
      "export default async () => { await new Promise((r) => setTimeout(r, 300)); throw new RangeError('batchBytes: too large') }\n",
    )
    const wal = { dir: join(dir, 'wal') }
    const deadLetterFile = join(dir, 'dead.ndjson')
    const q = createQueue({ sender: { module: file }, wal, deadLetterFile })
    await expect(q.start()).rejects.toMatchObject({
      name: 'InvalidConfigError',
      message: `Sender module ${file} refused its options: batchBytes: too large`,
    })
    expect(q.health().status).toBe('down')
    // The log's lock is released (its file removed), so another queue opens the same directory.
    expect(existsSync(join(wal.dir, 'lock'))).toBe(false)
    const next = createQueue({ send: async () => {}, wal, deadLetterFile })
    queues.push(next)
    await next.start()
    next.enqueue({ after: true })
    await next.drain()
  })
})

describe('options refused at createQueue', () => {
  const send = async (): Promise<void> => {}
  it('wal.encryption: key id present, 32-byte keys, types', () => {
    const dir = scratch()
    mkdirSync(join(dir, 'wal'))
    const wal = (encryption: unknown) => ({ dir: join(dir, 'wal'), encryption }) as never
    expect(
      issuesOf(() => createQueue({ send, wal: wal({ keyId: 2, keys: { 1: Buffer.alloc(32) } }) })),
    ).toEqual(['wal.encryption.keyId: 2 has no key in wal.encryption.keys'])
    expect(
      issuesOf(() => createQueue({ send, wal: wal({ keyId: 1, keys: { 1: Buffer.alloc(16) } }) })),
    ).toEqual([
      'wal.encryption.keys[1]: must be a 32-byte key (AES-256) as a Buffer or Uint8Array (got 16 bytes)',
    ])
    expect(
      issuesOf(() => createQueue({ send, wal: wal({ keyId: '1', keys: { 1: 'secret' }, cipher: 'x' }) })),
    ).toEqual([
      'wal.encryption.cipher: unknown option',
      'wal.encryption.keyId: must be an integer from 0 to 65535 (got "1")',
      'wal.encryption.keys[1]: must be a 32-byte key (AES-256) as a Buffer or Uint8Array (got "secret")',
    ])
    expect(issuesOf(() => createQueue({ send, wal: wal('key') }))).toEqual([
      'wal.encryption: must be an object { keyId, keys } (got "key")',
    ])
    // A valid one passes.
    createQueue({ send, wal: wal({ keyId: 1, keys: { 1: Buffer.alloc(32), 0: new Uint8Array(32) } }) })
  })

  it('adaptiveBatching refuses unknown keys', () => {
    expect(issuesOf(() => createQueue({ send, adaptiveBatching: { targetLatency: 50 } as never }))).toEqual([
      'adaptiveBatching.targetLatency: unknown option',
    ])
  })

  it('startTimeoutMs must be a positive integer (ms)', () => {
    expect(issuesOf(() => createQueue({ send, startTimeoutMs: 0 }))).toEqual([
      'startTimeoutMs: must be an integer from 1 to 86400000 (got 0)',
    ])
    expect(createQueue({ send }).options.startTimeoutMs).toBe(30_000)
  })
})

describe('calls out of order', () => {
  const send = async (): Promise<void> => {}
  it('flush() and drain() before start() reject with NotStartedError', async () => {
    const q = createQueue({ send })
    await expect(q.flush()).rejects.toBeInstanceOf(NotStartedError)
    await expect(q.drain()).rejects.toMatchObject({ code: 'VQ_NOT_STARTED' })
  })

  it('start() after stop() rejects with QueueClosedError (started before, or never)', async () => {
    const q = createQueue({ send })
    await q.start()
    await q.stop()
    await expect(q.start()).rejects.toBeInstanceOf(QueueClosedError)
    const never = createQueue({ send })
    await never.stop()
    await expect(never.start()).rejects.toMatchObject({ code: 'VQ_QUEUE_CLOSED', reason: 'stopped' })
  })
})

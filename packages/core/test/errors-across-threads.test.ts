/**
 * Errors keep their class, code and cause across each thread boundary: a
 * summary (ErrorInfo) crosses, the receiver rebuilds the error as what it was.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  createQueue,
  InvalidConfigError,
  isVineQueueError,
  PipelineDownError,
  type Queue,
  SendError,
  SenderLoadError,
  SendTimeoutError,
} from '@vinequeue/core'
import { WalError } from '@vinequeue/wal'
import { afterEach, describe, expect, it } from 'vitest'
import { errorFromInfo, errorInfo } from '../src/error-info.ts'

const fixture = (name: string): string => new URL(`./fixtures/${name}`, import.meta.url).href
const dirs: string[] = []
const queues: Queue[] = []
const keep = (q: Queue): Queue => {
  queues.push(q)
  return q
}
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.stop({ timeoutMs: 500 })))
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  delete process.env.VQ_FAULT_DIR
})
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'vq-errors-'))
  dirs.push(d)
  return d
}
/** What a postMessage does to the summary. */
const crossed = (err: unknown): Error => errorFromInfo(structuredClone(errorInfo(err)))

describe('an error summary rebuilt on the other side', () => {
  it('a VineQueue error comes back as its class with its fields', () => {
    const err = crossed(new SendError('bad gateway', { retryable: true, status: 502, retryAfterMs: 10 }))
    expect(err).toBeInstanceOf(SendError)
    expect(err).toMatchObject({ name: 'SendError', code: 'VQ_SEND_FAILED', status: 502, retryAfterMs: 10 })
    expect(crossed(new SendTimeoutError('slow', { timeoutMs: 5 }))).toMatchObject({ timeoutMs: 5 })
    const config = crossed(new InvalidConfigError('bad', { issues: ['a: no'] }))
    expect(config).toBeInstanceOf(InvalidConfigError)
    expect((config as InvalidConfigError).issues).toEqual(['a: no'])
  })

  it('a WalError comes back as a WalError with its code, its system cause kept', () => {
    const system = Object.assign(new Error('ENOSPC: no space left on device'), {
      code: 'ENOSPC',
      syscall: 'write',
    })
    const err = crossed(new WalError('VQ_WAL_IO', 'WAL write failed', { cause: system }))
    expect(err).toBeInstanceOf(WalError)
    expect(err).toMatchObject({ name: 'WalError', code: 'VQ_WAL_IO' })
    expect(err.cause).toMatchObject({ message: system.message, code: 'ENOSPC', syscall: 'write' })
  })

  it('any other error keeps its name, message and code; causes are kept three deep', () => {
    const deep = new Error('l0', {
      cause: new Error('l1', { cause: new Error('l2', { cause: new Error('l3') }) }),
    })
    const err = crossed(Object.assign(new TypeError('nope', { cause: deep }), { code: 'ERR_X' }))
    expect(err).not.toBeInstanceOf(SendError)
    expect(isVineQueueError(err)).toBe(false)
    expect(err).toMatchObject({ name: 'TypeError', message: 'nope', code: 'ERR_X' })
    let depth = 0
    for (let c = err.cause as Error | undefined; c; c = c.cause as Error | undefined) depth++
    expect(depth).toBe(3)
  })
})

describe('errors across the threads of a queue', () => {
  it('WAL → pipeline → host: start() on a locked log rejects with PipelineDownError whose cause is a WalError (VQ_WAL_LOCKED)', async () => {
    const dir = join(tempDir(), 'wal')
    const first = keep(createQueue({ send: async () => {}, wal: { dir } }))
    await first.start()
    const second = keep(createQueue({ send: async () => {}, wal: { dir } }))
    const err = await second.start().then(
      () => undefined,
      (e: unknown) => e as Error,
    )
    expect(err).toBeInstanceOf(PipelineDownError)
    expect(err!.cause).toBeInstanceOf(WalError)
    expect(err!.cause).toMatchObject({ name: 'WalError', code: 'VQ_WAL_LOCKED' })
  })

  it('WAL → pipeline → host: a failed fdatasync arrives as an error event that is a WalError (VQ_WAL_IO), the system error as its cause', async () => {
    const root = tempDir()
    process.env.VQ_FAULT_DIR = root
    const q = keep(
      createQueue({
        send: async () => {},
        wal: { dir: join(root, 'wal'), fs: fixture('fault-fs.mjs') },
        flushIntervalMs: 5,
      }),
    )
    const errors: Error[] = []
    const first = new Promise<void>((resolve) =>
      q.on('error', (e) => {
        errors.push(e)
        resolve()
      }),
    )
    await q.start()
    writeFileSync(join(root, 'eio-sync'), '')
    q.enqueue({ i: 1 })
    await first
    expect(errors[0]).toBeInstanceOf(WalError)
    expect(errors[0]).toMatchObject({ name: 'WalError', code: 'VQ_WAL_IO' })
    expect(errors[0]!.cause).toMatchObject({ code: 'EIO' })
    rmSync(join(root, 'eio-sync'))
    await q.drain()
  })

  it("sender thread → pipeline → host: a factory refusing its options through the kit rejects start() with InvalidConfigError, its issues named as sender.options, the cause the sender's own InvalidConfigError", async () => {
    const q = keep(
      createQueue({
        sender: { module: fixture('refusing-sender.mjs'), options: { mode: 'config', timeoutMs: 0, x: 1 } },
        senderThreads: 1,
      }),
    )
    const err = await q.start().then(
      () => undefined,
      (e: unknown) => e as InvalidConfigError,
    )
    expect(err).toBeInstanceOf(InvalidConfigError)
    expect(err).not.toBeInstanceOf(SenderLoadError)
    expect(err!.issues).toEqual([
      'sender.options.timeoutMs: must be an integer from 1 to 1000 ms (got 0)',
      'sender.options.x: unknown option',
    ])
    expect(err!.cause).toBeInstanceOf(InvalidConfigError)
    expect((err!.cause as InvalidConfigError).issues).toEqual([
      'timeoutMs: must be an integer from 1 to 1000 ms (got 0)',
      'x: unknown option',
    ])
  })

  it("sender thread → pipeline → host: a send failing misconfigured is reported as a SendError whose cause is the sender's SendError, status kept", async () => {
    const q = keep(
      createQueue({
        sender: { module: fixture('refusing-sender.mjs'), options: { mode: 'send' } },
        senderThreads: 1,
        flushIntervalMs: 5,
        retryInitialDelayMs: 1000,
      }),
    )
    const error = new Promise<Error>((resolve) => q.on('error', resolve))
    await q.start()
    q.enqueue({ i: 1 })
    const err = await error
    expect(err).toBeInstanceOf(SendError)
    expect(err).toMatchObject({ misconfigured: true, status: 495 })
    expect(err.cause).toBeInstanceOf(SendError)
    expect(err.cause).toMatchObject({
      code: 'VQ_SEND_FAILED',
      status: 495,
      misconfigured: true,
      message: 'certificate has expired',
    })
  })
})

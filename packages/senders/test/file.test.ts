import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import {
  createQueue,
  type DeadLetter,
  InvalidConfigError,
  type Queue,
  type QueueOptions,
  SendError,
} from '@vinequeue/core'
import createFileSender from '@vinequeue/senders/file'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { inThreadQueue } from './in-thread-queue.ts'

// Loaded BY PACKAGE NAME into the sender pool, from dist: build first
// (`npx tsc -p packages/senders/tsconfig.build.json`).
const SENDER = '@vinequeue/senders/file'
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url))

let dir: string
let file: string
const queues: Queue[] = []

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vq-senders-file-'))
  file = join(dir, 'out.ndjson')
})

afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.stop({ timeoutMs: 2000 })))
  rmSync(dir, { recursive: true, force: true })
})

function queue(options: Partial<QueueOptions>): Queue {
  const q = createQueue({ senderThreads: 2, maxBatchSize: 500, flushIntervalMs: 20, ...options })
  queues.push(q)
  return q
}

function lines(path = file): string[] {
  return readFileSync(path, 'utf8').split('\n').slice(0, -1)
}

/** Descriptors of this process open on `path` (Linux: /proc/self/fd). */
function openDescriptors(path: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path
    } catch {
      return false // closed while listing (the listing's own descriptor)
    }
  }).length
}

describe('@vinequeue/senders/file', () => {
  it('appends every item exactly once from concurrent sends on two threads, whole lines only', async () => {
    const N = 6000
    const q = queue({
      sender: { module: SENDER, options: { path: file, fsync: true } },
      senderConcurrency: 4,
      maxBatchSize: 200,
    })
    await q.start()
    const pad = 'p'.repeat(400) // ~2.5 MB in all: many batches in flight at once
    for (let n = 0; n < N; n++) q.enqueue({ n, pad })
    await q.drain()

    const seen = new Uint8Array(N)
    const all = lines()
    // A line torn by interleaved writes would not parse.
    for (const line of all) seen[(JSON.parse(line) as { n: number }).n]!++
    expect(all).toHaveLength(N)
    expect(seen.every((count) => count === 1)).toBe(true)
    expect(q.metrics()).toMatchObject({ sentTotal: N, deadLetteredTotal: 0 })
  })

  it('writes raw items as their UTF-8 text, one line each; empty or multi-line raw items are dead-lettered', async () => {
    const letters: DeadLetter[] = []
    const q = queue({
      sender: { module: SENDER, options: { path: file } },
      onDeadLetter: (d) => letters.push(d),
    })
    await q.start()
    const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)
    q.enqueueRaw(utf8('{"raw":"ünïcode"}'))
    q.enqueueRaw(utf8('{"raw":"trailing newline"}\n'))
    q.enqueueRaw(utf8(''))
    // A dead letter carries the first failed item's reason: one bad item per batch.
    await q.flush()
    q.enqueueRaw(utf8('{"raw":\n"two lines"}'))
    q.enqueue({ decoded: true })
    await q.drain()

    expect(lines().sort()).toEqual(['{"decoded":true}', '{"raw":"trailing newline"}', '{"raw":"ünïcode"}'])
    const dead = letters.flatMap((d) => d.items.map((item) => new TextDecoder().decode(item as Uint8Array)))
    expect(dead.sort()).toEqual(['', '{"raw":\n"two lines"}'])
    expect(letters.map((d) => d.reason).sort()).toEqual([
      'permanent failure: raw item is empty',
      'permanent failure: raw item spans several lines: not one NDJSON line',
    ])
    expect(q.metrics()).toMatchObject({ sentTotal: 3, deadLetteredTotal: 2 })
  })

  it('reports items JSON cannot encode as permanent per-item failures (dead letters)', async () => {
    const letters: DeadLetter[] = []
    const q = queue({
      sender: { module: SENDER, options: { path: file } },
      onDeadLetter: (d) => letters.push(d),
    })
    await q.start()
    q.enqueueBatch([{ ok: 1 }, { big: 1n }, { ok: 2 }, undefined])
    await q.drain()
    expect(lines()).toEqual(['{"ok":1}', '{"ok":2}', 'null'])
    expect(letters).toHaveLength(1)
    expect(letters[0]!.items).toEqual([{ big: 1n }])
    expect(letters[0]!.reason).toMatch(/not JSON-serializable/)
    expect(q.metrics()).toMatchObject({ sentTotal: 3, deadLetteredTotal: 1, retriesTotal: 0 })
  })

  it('rejects bad options when the queue starts, naming every bad field', async () => {
    const q = queue({
      sender: { module: SENDER, options: { path: '', format: 'csv', fsync: 1, colour: 'red' } },
    })
    const started = q.start()
    await expect(started).rejects.toThrow(/path: must be a non-empty string/)
    await expect(started).rejects.toThrow(/format: must be 'ndjson'/)
    await expect(started).rejects.toThrow(/fsync: must be a boolean \(got 1\)/)
    await expect(started).rejects.toThrow(/colour: unknown option/)
  })

  it('bad options: the factory throws one InvalidConfigError with every issue; start() rejects with them as sender.options.*', async () => {
    const options = { path: '', fsync: 1, colour: 'red' } as never
    await expect(createFileSender(options)).rejects.toThrow(InvalidConfigError)
    const err = await Promise.resolve(createFileSender(options)).catch(
      (e: unknown) => e as InvalidConfigError,
    )
    expect(err).toMatchObject({ code: 'VQ_INVALID_CONFIG' })
    expect((err as InvalidConfigError).issues).toEqual([
      'colour: unknown option',
      'path: must be a non-empty string (got "")',
      'fsync: must be a boolean (got 1)',
    ])
    const q = queue({ sender: { module: SENDER, options } })
    const started = await q.start().catch((e: unknown) => e as InvalidConfigError)
    expect(started).toBeInstanceOf(InvalidConfigError)
    expect((started as InvalidConfigError).issues).toEqual([
      'sender.options.colour: unknown option',
      'sender.options.path: must be a non-empty string (got "")',
      'sender.options.fsync: must be a boolean (got 1)',
    ])
  })

  it('a path that cannot be opened makes start() reject', async () => {
    const q = queue({ sender: { module: SENDER, options: { path: join(dir, 'missing-dir', 'out.ndjson') } } })
    await expect(q.start()).rejects.toThrow(/ENOENT/)
  })

  it.skipIf(process.platform !== 'linux')(
    'keeps one descriptor open for its lifetime; close() fsyncs and closes it, once; later sends fail retryably',
    async () => {
      const sender = await createFileSender({ path: file })
      // In-thread, so that this process holds the sender's descriptor.
      const { q, errors, letters } = inThreadQueue(sender)
      queues.push(q)
      await q.start()
      for (let n = 0; n < 10; n++) q.enqueue({ n })
      await q.drain()
      expect(openDescriptors(file)).toBe(1)

      // The descriptor, not the path: a renamed file keeps getting the lines.
      const renamed = join(dir, 'renamed.ndjson')
      renameSync(file, renamed)
      for (let n = 10; n < 20; n++) q.enqueue({ n })
      await q.drain()
      expect(lines(renamed).map((l) => JSON.parse(l).n)).toEqual([...Array(20).keys()])
      expect(openDescriptors(renamed)).toBe(1)

      await sender.close!()
      expect(openDescriptors(renamed)).toBe(0)
      await sender.close!() // idempotent

      q.enqueue({ n: 20 })
      await q.drain()
      expect(errors).toHaveLength(2)
      for (const err of errors) {
        expect(err).toBeInstanceOf(SendError)
        expect(err).toMatchObject({ retryable: true, message: 'file sender is closed' })
      }
      expect(letters.flatMap((d) => d.items)).toEqual([{ n: 20 }])
      expect(lines(renamed)).toHaveLength(20)
      expect(q.metrics()).toMatchObject({ sentTotal: 20, deadLetteredTotal: 1 })
    },
  )

  it('writes to stdout when no path is given', async () => {
    // A real child process: the sender thread's stdout is the process's stdout.
    // (CommonJS -e with import(): `--input-type=module` would be inherited by
    // the queue's worker threads, where Node rejects it.)
    const script = `import('@vinequeue/core').then(async ({ createQueue }) => {
      const q = createQueue({ sender: { module: '${SENDER}' }, senderThreads: 1 })
      await q.start()
      for (let n = 0; n < 3; n++) q.enqueue({ n })
      await q.drain()
      await q.stop()
    })`
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { cwd: repoRoot })
    expect(stdout).toBe('{"n":0}\n{"n":1}\n{"n":2}\n')
  })
})

import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { createQueue, type DeadLetter, type QueueOptions } from '@vinequeue/core'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

// Loaded BY PACKAGE NAME into the sender pool. The pool's threads resolve the
// name from @vinequeue/core's folder, so it resolves through the repo root's
// node_modules (the root package.json lists this package as a devDependency).
const SENDER = '@vinequeue/example-file-sender'
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url))

let dir: string
let file: string
const queues: Array<ReturnType<typeof createQueue>> = []

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vq-file-sender-'))
  file = join(dir, 'out.ndjson')
})

afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.stop({ timeoutMs: 1000 })))
  rmSync(dir, { recursive: true, force: true })
})

function queue(options: Partial<QueueOptions> & { sender: QueueOptions['sender'] }) {
  const q = createQueue({ senderThreads: 2, maxBatchSize: 500, flushIntervalMs: 20, ...options })
  queues.push(q)
  return q
}

function lines(): string[] {
  return readFileSync(file, 'utf8').split('\n').slice(0, -1)
}

describe('@vinequeue/example-file-sender', () => {
  it('loads by package name into the sender pool and appends every item exactly once', async () => {
    const N = 20_000
    const q = queue({ sender: { module: SENDER, options: { path: file, fsync: true } } })
    await q.start()
    for (let n = 0; n < N; n++) q.enqueue({ n, user: `u${n % 7}` })
    await q.drain()

    const seen = new Uint8Array(N)
    for (const line of lines()) seen[JSON.parse(line).n]++
    expect(lines()).toHaveLength(N)
    expect(seen.every((count) => count === 1)).toBe(true)
    expect(q.metrics().sentTotal).toBe(N)
  })

  it('writes raw items as their UTF-8 text, one per line', async () => {
    const q = queue({ sender: { module: SENDER, options: { path: file } } })
    await q.start()
    q.enqueueRaw(new TextEncoder().encode('{"raw":"ünïcode"}'))
    q.enqueue({ decoded: true })
    await q.drain()
    expect(lines().sort()).toEqual(['{"decoded":true}', '{"raw":"ünïcode"}'])
  })

  it('reports items JSON cannot encode as permanent per-item failures (dead letters)', async () => {
    const deadLetters: DeadLetter[] = []
    const q = queue({
      sender: { module: SENDER, options: { path: file } },
      onDeadLetter: (dl) => deadLetters.push(dl),
    })
    await q.start()
    q.enqueueBatch([{ ok: 1 }, { big: 1n }, { ok: 2 }])
    await q.drain()
    expect(lines()).toEqual(['{"ok":1}', '{"ok":2}'])
    expect(deadLetters).toHaveLength(1)
    expect(deadLetters[0]!.items).toEqual([{ big: 1n }])
    expect(deadLetters[0]!.reason).toMatch(/not JSON-serializable/)
  })

  it('rejects bad options when the queue starts, naming every bad field', async () => {
    const q = queue({ sender: { module: SENDER, options: { path: '', format: 'csv', colour: 'red' } } })
    const started = q.start()
    await expect(started).rejects.toThrow(/path: must be a non-empty string/)
    await expect(started).rejects.toThrow(/format: must be 'ndjson'/)
    await expect(started).rejects.toThrow(/colour: unknown option/)
  })

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
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], {
      cwd: join(repoRoot, 'examples/file-sender'),
    })
    expect(stdout).toBe('{"n":0}\n{"n":1}\n{"n":2}\n')
  })
})

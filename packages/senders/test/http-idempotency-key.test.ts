import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createQueue, InvalidConfigError } from '@vinequeue/core'
import createHttpSender, { type HttpSenderOptions } from '@vinequeue/senders/http'
import { describe, expect, it } from 'vitest'
import { httpHarness } from './fixtures-http/harness.ts'
import type { Exchange } from './fixtures-http/target.ts'

// `idempotencyKey`: the HTTP sender names each batch in a header, and a sink
// that drops a key it has already stored stores every item once, even when a
// crash makes the queue send a batch again.
const child = fileURLToPath(new URL('./fixtures-http/wal-http-key-child.mjs', import.meta.url))

const { target, queue, tempDir } = httpHarness({ flushIntervalMs: 5 })

/** A sink that stores each request's items under its Idempotency-Key and drops a key it has. */
class DedupSink {
  readonly stored = new Map<string, number[]>()
  /** Requests whose key was already stored: dropped, answered 200. */
  repeats = 0
  /** Items in those. */
  repeatedItems = 0
  /** Requests without the header. */
  missingKey = 0
  /** Stored, then never answered while set (the sender does not learn it was delivered). */
  hold = false
  held = 0

  handle = async (x: Exchange): Promise<void> => {
    const key = x.req.headers['idempotency-key']
    const items = (await x.items()) as Array<{ i: number }>
    if (typeof key !== 'string') {
      this.missingKey++
      return x.reply(400, {}, 'no Idempotency-Key')
    }
    if (this.stored.has(key)) {
      this.repeats++
      this.repeatedItems += items.length
      return x.reply(200)
    }
    this.stored.set(
      key,
      items.map((it) => it.i),
    )
    if (this.hold) {
      this.held++
      return // (the child is killed with this request open)
    }
    return x.reply(200)
  }

  items(): number[] {
    return [...this.stored.values()].flat()
  }
}

function runChild(dir: string, url: string, from: number, count: number) {
  const proc = spawn(process.execPath, [child, dir, url, String(from), String(count)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const state = { flushed: 0, done: false }
  proc.stdout.setEncoding('utf8')
  proc.stdout.on('data', (chunk: string) => {
    for (const line of chunk.split('\n')) {
      const m = /^flushed (\d+)$/.exec(line)
      if (m) state.flushed = Number(m[1])
      if (line === 'done') state.done = true
    }
  })
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    proc.on('exit', (code, sig) => resolve(sig ?? code)),
  )
  return { proc, state, exited }
}

async function until(fn: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!fn()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe('@vinequeue/senders/http: idempotencyKey', () => {
  it('kill -9 with batches stored by the sink and not acknowledged, then a restart on the same WAL: the sink gets repeats and, dropping them by key, stores every item exactly once', {
    timeout: 90_000,
  }, async () => {
    const sink = new DedupSink()
    const t = await target(sink.handle)
    const dir = join(tempDir(), 'wal')

    // Run 1: the sink answers the first batches, then stores and holds every request:
    // delivered, never acknowledged. SIGKILL once two are held and some items are in the log.
    const first = runChild(dir, t.url, 0, 4000)
    let killed = false
    try {
      await until(() => sink.stored.size >= 10, 30_000)
      sink.hold = true
      await until(() => sink.held >= 2 && first.state.flushed > 0, 30_000)
      first.proc.kill('SIGKILL')
      killed = true
    } finally {
      if (!killed) first.proc.kill('SIGKILL')
    }
    expect(await first.exited).toBe('SIGKILL')
    const flushedAtKill = first.state.flushed
    const storedAtKill = sink.items().length
    sink.hold = false

    // Run 2 on the same log: what it held is sent again, then items from 4000 on.
    const second = runChild(dir, t.url, 4000, 400)
    expect(await second.exited).toBe(0)
    expect(second.state.done).toBe(true)

    const items = sink.items()
    const counts = new Map<number, number>()
    for (const i of items) counts.set(i, (counts.get(i) ?? 0) + 1)
    const duplicates = [...counts].filter(([, n]) => n > 1).map(([i]) => i)
    const missing: number[] = []
    for (let i = 0; i < flushedAtKill; i++) if (!counts.has(i)) missing.push(i)
    for (let i = 4000; i < 4400; i++) if (!counts.has(i)) missing.push(i)
    expect({ duplicatesStored: duplicates.slice(0, 10), missing: missing.slice(0, 10) }).toEqual({
      duplicatesStored: [],
      missing: [],
    })
    // The held batches (stored, never acknowledged) came back: repeats the key made the sink drop.
    expect(sink.repeats).toBeGreaterThanOrEqual(sink.held)
    expect(sink.repeatedItems).toBeGreaterThan(0)
    expect(sink.missingKey).toBe(0)
    // Every key is the log's id and the batch's first sequence number (run 1: one producer,
    // WAL-first on a fresh log, so item i has sequence number i).
    const logId = readFileSync(join(dir, 'id'), 'utf8').trim()
    for (const [key, its] of sink.stored) {
      expect(key).toMatch(new RegExp(`^${logId}:\\d+$`))
      if (its[0]! < 4000) expect(key).toBe(`${logId}:${its[0]}`)
    }
    console.log(
      `idempotency key across kill -9: flushed ${flushedAtKill}, stored at the kill ${storedAtKill}, ` +
        `held ${sink.held}, repeats dropped ${sink.repeats} (${sink.repeatedItems} items), stored ${items.length}`,
    )
  })

  it('is off by default (no header); set, each request carries batch.key: the log id and the first sequence number', async () => {
    const seen: Array<{ key: string | undefined; n: number }> = []
    const t = await target(async (x) => {
      const k = x.req.headers['idempotency-key']
      const items = await x.accept()
      seen.push({ key: typeof k === 'string' ? k : undefined, n: items.length })
    })
    const plain = queue({ url: t.url }, { maxBatchSize: 10 })
    await plain.start()
    for (let i = 0; i < 30; i++) plain.enqueue({ i })
    await plain.drain()
    expect(seen.length).toBeGreaterThan(0)
    expect(seen.filter((s) => s.key !== undefined)).toEqual([])
    seen.length = 0

    const dir = join(tempDir(), 'wal')
    const keyed = queue(
      { url: t.url, idempotencyKey: 'Idempotency-Key' },
      { maxBatchSize: 10, wal: { dir, syncMode: 'always' } },
    )
    await keyed.start()
    for (let i = 0; i < 30; i++) await keyed.enqueueAsync({ i })
    await keyed.drain()
    const logId = readFileSync(join(dir, 'id'), 'utf8').trim()
    const batches = seen
      .map(({ key, n }) => {
        const m = new RegExp(`^${logId}:(\\d+)$`).exec(key ?? '')
        expect(m, key).not.toBeNull()
        return { seq: Number(m![1]), n }
      })
      .sort((a, b) => a.seq - b.seq)
    // Each batch is named by its first item's sequence number: they follow each other from 0.
    let next = 0
    for (const b of batches) {
      expect(b.seq).toBe(next)
      next += b.n
    }
    expect(next).toBe(30)
  })

  it('after a 413 each part carries its own key (<batch.key>/<count>/<first>-<last>), the same when the batch is sent again', async () => {
    const accepted: Array<{ key: string; n: number }> = []
    const tooLarge: string[] = []
    const t = await target(async (x) => {
      const key = String(x.req.headers['idempotency-key'])
      const items = await x.items()
      if (items.length > 3) {
        tooLarge.push(key)
        return x.reply(413, {}, 'payload too large')
      }
      await x.accept()
      accepted.push({ key, n: items.length })
    })
    const sender = await createHttpSender({ url: t.url, idempotencyKey: 'Idempotency-Key' })
    let batchKey = ''
    // In-thread: the test sees the batch the sender is given.
    const inThread = createQueue({
      send: async (batch, ctx) => {
        batchKey = batch.key
        await sender.send(batch, ctx) // twice: as a crash would make it, the same batch again
        return sender.send(batch, ctx)
      },
      maxBatchSize: 10,
      flushIntervalMs: 60_000,
    })
    await inThread.start()
    for (let i = 0; i < 10; i++) inThread.enqueue({ i })
    await inThread.drain()
    await inThread.stop()
    await sender.close!()

    const K = batchKey
    const parts = [`${K}/10/0-2`, `${K}/10/3-4`, `${K}/10/5-7`, `${K}/10/8-9`]
    expect(accepted.map((a) => a.key)).toEqual([...parts, ...parts])
    expect(accepted.map((a) => a.n)).toEqual([3, 2, 3, 2, 3, 2, 3, 2])
    expect(tooLarge).toEqual([K, `${K}/10/0-4`, `${K}/10/5-9`, K, `${K}/10/0-4`, `${K}/10/5-9`])
  })

  it('bad values are reported with the other issues in one InvalidConfigError', () => {
    const issues = (o: Partial<HttpSenderOptions>): string[] => {
      try {
        createHttpSender({ url: 'http://127.0.0.1:1', ...o } as HttpSenderOptions)
      } catch (err) {
        expect(err).toBeInstanceOf(InvalidConfigError)
        expect(err).toMatchObject({ code: 'VQ_INVALID_CONFIG' })
        return (err as InvalidConfigError).issues as string[]
      }
      return []
    }
    expect(issues({ idempotencyKey: 'Idempotency-Key' })).toEqual([])
    expect(issues({ idempotencyKey: true as unknown as string, pipelining: -1 })).toEqual([
      'pipelining: must be from 0 to 128 requests (got -1)',
      "idempotencyKey: must be a header name, e.g. 'Idempotency-Key' (got true)",
    ])
    expect(issues({ idempotencyKey: 'bad key' })).toEqual([
      `idempotencyKey: must be a header name, e.g. 'Idempotency-Key' (got "bad key")`,
    ])
    expect(issues({ idempotencyKey: 'Content-Length' })).toEqual([
      'idempotencyKey: "Content-Length" is a header the sender sets',
    ])
    expect(issues({ idempotencyKey: 'X-Key', headers: { 'x-key': 'v' } })).toEqual([
      'idempotencyKey: "X-Key" is also in headers: give it in one place',
    ])
  })
})

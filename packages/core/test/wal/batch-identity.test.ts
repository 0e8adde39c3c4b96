import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createQueue } from '@vinequeue/core'
import { afterEach, describe, expect, it } from 'vitest'
import { tempDir, waitFor } from '../helpers.ts'
import { feed, SMALL, Target } from './outage-kit.ts'

// batch.id / batch.key with a WAL: derived from the log, so the batch a
// restart re-delivers carries what it carried before the crash.
const child = fileURLToPath(new URL('../fixtures/batch-id-child.mjs', import.meta.url))

interface Sent {
  id: number
  key: string
  first: number
  count: number
  attempt: number
}

function sentLines(dir: string, phase: string): Sent[] {
  const file = join(dir, `sent-${phase}.ndjson`)
  if (!existsSync(file)) return []
  // The last line may be cut by the kill.
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.endsWith('}'))
    .map((l) => JSON.parse(l) as Sent)
}

/** Runs the child; `killWhen` decides, on each look, to SIGKILL it. Resolves with the signal (or null). */
async function run(
  dir: string,
  phase: string,
  from: number,
  count: number,
  killWhen?: () => boolean,
): Promise<NodeJS.Signals | null> {
  const proc = spawn(process.execPath, [child, dir, phase, String(from), String(count)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  proc.stdout.setEncoding('utf8')
  proc.stdout.on('data', (chunk: string) => {
    out += chunk
  })
  const exited = new Promise<NodeJS.Signals | null>((resolve) => proc.on('exit', (_c, sig) => resolve(sig)))
  if (killWhen) {
    try {
      await waitFor(() => out.includes('enqueued') && killWhen(), 30_000)
    } finally {
      proc.kill('SIGKILL')
    }
  }
  const sig = await exited
  if (!killWhen) expect(out).toContain('done')
  return sig
}

const cleanups: Array<() => void> = []
afterEach(() => {
  for (const c of cleanups.splice(0)) c()
})

describe('batch identity with a WAL (WAL-first, syncMode always)', () => {
  it('a batch re-delivered after kill -9 and a restart has the id and key it had before; numbers go on after the log was drained', {
    timeout: 120_000,
  }, async () => {
    const { dir, cleanup } = tempDir()
    cleanups.push(cleanup)

    // 1. 400 items; 3 batches acknowledged, then sends hang: SIGKILL with 4 batches out, unacknowledged.
    const held = (): Sent[] => sentLines(dir, 'hold')
    const sig = await run(dir, 'hold', 0, 400, () => new Set(held().map((s) => s.id)).size >= 7)
    expect(sig).toBe('SIGKILL')
    const logId = readFileSync(join(dir, 'wal', 'id'), 'utf8').trim()
    expect(logId).toMatch(/^[0-9a-f]{32}$/)
    const before = held()
    // One producer, WAL-first, a fresh log: item n has sequence number n, and a batch's id is its first item's.
    for (const s of before) {
      expect(s.id).toBe(s.first)
      expect(s.key).toBe(`${logId}:${s.id}`)
    }
    const unacked = [...new Map(before.slice(3).map((s) => [s.id, s])).values()]
    expect(unacked.length).toBeGreaterThanOrEqual(4)

    // 2. Restart on the same log: what it held comes back, under the same ids and keys.
    expect(await run(dir, 'redeliver', 0, 0)).toBe(null)
    const after = sentLines(dir, 'redeliver')
    const byFirst = new Map(after.map((s) => [s.first, s]))
    for (const s of unacked) {
      // Sent and never acknowledged: re-delivered whole, same identity.
      expect(byFirst.get(s.first)).toMatchObject({ id: s.id, key: s.key, count: s.count })
    }
    for (const s of before) {
      const again = byFirst.get(s.first)
      if (again) expect({ id: again.id, key: again.key }).toEqual({ id: s.id, key: s.key })
    }
    // Different batches never share an id: their item ranges are disjoint and each id is its first item.
    const redelivered = [...new Map(after.map((s) => [s.id, s])).values()].sort((a, b) => a.id - b.id)
    for (const [i, s] of redelivered.entries()) {
      expect(s.id).toBe(s.first)
      expect(s.key).toBe(`${logId}:${s.id}`)
      if (i > 0) expect(s.id).toBeGreaterThanOrEqual(redelivered[i - 1]!.id + redelivered[i - 1]!.count)
    }
    // 3. The log is empty now (every segment delivered, deleted at this open): new batches go on
    //    numbering past everything given before, under the same log id.
    expect(await run(dir, 'more', 1000, 200)).toBe(null)
    const more = sentLines(dir, 'more')
    expect(more.length).toBeGreaterThan(0)
    const ceiling = Math.max(...[...before, ...after].map((s) => s.id + s.count))
    for (const s of more) {
      expect(s.id).toBeGreaterThanOrEqual(ceiling)
      expect(s.key).toBe(`${logId}:${s.id}`)
    }
    expect(new Set(more.map((s) => s.id)).size).toBe(more.length) // (every send succeeded: no retry)
  })
})

describe("batch identity in mode 'spill'", () => {
  it('batches sent from memory have negative ids under the run scope, batches read back from the log the log id and their sequence number', async () => {
    const { dir, cleanup } = tempDir()
    cleanups.push(cleanup)
    const target = new Target()
    const seen: Array<{ id: number; key: string; count: number }> = []
    const q = createQueue({
      ...SMALL,
      send: (batch) => {
        seen.push({ id: batch.id, key: batch.key, count: batch.count })
        return target.send(batch)
      },
      wal: { dir: join(dir, 'wal'), mode: 'spill', segmentBytes: 64 * 1024 },
    })
    await q.start()
    await feed(q, 0, 500) // the target is up: sent from memory
    await q.drain()
    target.down = true
    await feed(q, 500, 20_000) // an outage longer than memory: spilled to the log
    await q.flush()
    target.down = false
    await q.drain()
    await waitFor(() => q.metrics().walPendingItems === 0)
    await q.stop()
    expect(target.exactlyOnce(20_500)).toBe(true)

    const logId = readFileSync(join(dir, 'wal', 'id'), 'utf8').trim()
    const fromLog = seen.filter((s) => s.id >= 0)
    const fromMemory = seen.filter((s) => s.id < 0)
    expect(fromLog.length).toBeGreaterThan(0)
    expect(fromMemory.length).toBeGreaterThan(0)
    for (const s of fromLog) expect(s.key).toBe(`${logId}:${s.id}`)
    const runScope = fromMemory[0]!.key.split(':')[0]
    expect(runScope).toMatch(/^[0-9a-f]{32}$/)
    expect(runScope).not.toBe(logId)
    for (const s of fromMemory) expect(s.key).toBe(`${runScope}:${s.id}`)
    // Log batches: disjoint sequence ranges (a batch retried during the outage keeps its id and count).
    const byId = new Map(fromLog.map((s) => [s.id, s.count]))
    const starts = [...byId.keys()].sort((a, b) => a - b)
    for (let i = 1; i < starts.length; i++)
      expect(starts[i]!).toBeGreaterThanOrEqual(starts[i - 1]! + byId.get(starts[i - 1]!)!)
  })
})

describe('batch identity without a WAL', () => {
  it('ids are negative (never a log sequence number), distinct within a run; keys are scoped to the run', async () => {
    const seen: Array<{ id: number; key: string }> = []
    const make = () =>
      createQueue({
        send: (batch) => {
          seen.push({ id: batch.id, key: batch.key })
        },
        maxBatchSize: 10,
      })
    const scopes: string[] = []
    for (let r = 0; r < 2; r++) {
      const q = make()
      await q.start()
      for (let i = 0; i < 100; i++) q.enqueue({ i })
      await q.drain()
      await q.stop()
      const run = seen.splice(0)
      expect(run.length).toBeGreaterThanOrEqual(10)
      expect(new Set(run.map((s) => s.id)).size).toBe(run.length)
      const scope = run[0]!.key.split(':')[0]!
      expect(scope).toMatch(/^[0-9a-f]{32}$/)
      for (const s of run) {
        expect(s.id).toBeLessThan(0)
        expect(s.key).toBe(`${scope}:${s.id}`)
      }
      scopes.push(scope)
    }
    // The ids start over in a new run; the keys do not repeat.
    expect(scopes[0]).not.toBe(scopes[1])
  })
})

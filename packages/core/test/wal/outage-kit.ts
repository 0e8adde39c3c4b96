// Shared by the WAL queue tests: scratch folders and queues cleaned up after
// each test, a target that can go down, and a queue small enough that an
// outage overflows its memory (and log) quickly.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Queue, QueueOptions } from '@vinequeue/core'
import { afterEach, expect } from 'vitest'

/** Registers the cleanup in the calling test file: queues stopped, folders removed, after each test. */
export function scratch(prefix: string): { root(): string; walDir(): string; keep(q: Queue): Queue } {
  const dirs: string[] = []
  const queues: Queue[] = []
  afterEach(async () => {
    await Promise.all(queues.splice(0).map((q) => q.stop({ timeoutMs: 500 })))
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })
  const root = (): string => {
    const d = mkdtempSync(join(tmpdir(), prefix))
    dirs.push(d)
    return d
  }
  return {
    root,
    walDir: () => join(root(), 'wal'),
    keep: (q) => {
      queues.push(q)
      return q
    },
  }
}

/** A target that can go down: while down every send fails (retryable). Counts what it received, by id. */
export class Target {
  down = false
  calls = 0
  readonly seen = new Map<number, number>()
  readonly send = async (batch: { items(): unknown[] }): Promise<undefined> => {
    this.calls++
    if (this.down) throw new Error('target down')
    for (const item of batch.items() as Array<{ i: number }>)
      this.seen.set(item.i, (this.seen.get(item.i) ?? 0) + 1)
    return undefined
  }
  /** Every id in [0, n) exactly once. */
  exactlyOnce(n: number): boolean {
    if (this.seen.size !== n) return false
    for (let i = 0; i < n; i++) if (this.seen.get(i) !== 1) return false
    return true
  }
}

/** Small memory, so an outage overflows it quickly. */
export const SMALL: QueueOptions = {
  ringBytes: 64 * 1024,
  maxItemBytes: 1024,
  maxBatchSize: 100,
  maxInFlightBatches: 2,
  flushIntervalMs: 5,
  retryInitialDelayMs: 20,
  retryMaxDelayMs: 50,
  circuitBreaker: false,
}

/** ~100 B per item. */
export const payload: string = 'x'.repeat(80)

/** enqueueAsync `n` items from `from`; returns when all are accepted. */
export async function feed(q: Queue, from: number, n: number): Promise<void> {
  for (let i = from; i < from + n; i++) await q.enqueueAsync({ i, payload })
}

/**
 * `n` items written to the log of a queue that `make` builds around a target
 * that is down, then that queue stopped: a backlog for the next start.
 */
export async function fillLog(make: (target: Target) => Queue, n: number): Promise<void> {
  const down = new Target()
  down.down = true
  const q = make(down)
  await q.start()
  await feed(q, 0, n)
  await q.flush()
  expect((await q.stop({ timeoutMs: 200 })).walPendingItems).toBe(n)
}

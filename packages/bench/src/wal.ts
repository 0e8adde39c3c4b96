/**
 * Question: what does durability cost end to end? The same round as
 * e2e_memory (enqueue → pipeline → no-op sender module, until acknowledged),
 * with the queue's WAL on, `syncMode: 'always'` (every batch fdatasync'ed —
 * one fsync per pipeline pass, group commit — before it is sent), plain,
 * snappy-compressed and AES-256-GCM-encrypted, interleaved with a memory-only
 * queue in the same rounds. Floor of the naive approach, in the same run: the
 * events as JSON lines appended with fs.writeSync and fdatasync'ed per
 * 1000-event batch on the producing thread.
 */
import { randomBytes } from 'node:crypto'
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setImmediate as yieldToLoop } from 'node:timers/promises'
import type { Queue, QueueOptions } from '@vinequeue/core'
import { e2eRound } from './e2e-memory.ts'
import { type BenchEvent, POOL_MASK } from './event.ts'
import { startNoopQueue } from './noop-queue.ts'
import { type Figure, progress } from './report.ts'
import { interleave, median } from './stats.ts'

const ITEMS = 300_000
const WAL_ROUNDS = 5

/** The naive durable batcher: JSON lines, writeSync + fdatasync per 1000 events, on this thread. */
async function naiveRound(pool: readonly BenchEvent[], dir: string): Promise<number> {
  const fd = openSync(join(dir, 'naive.ndjson'), 'w')
  const t0 = performance.now()
  try {
    for (let i = 0; i < ITEMS; i += 1000) {
      let body = ''
      for (let k = i; k < i + 1000; k++) body += `${JSON.stringify(pool[k & POOL_MASK])}\n`
      writeSync(fd, body)
      fdatasyncSync(fd)
      await yieldToLoop()
    }
  } finally {
    closeSync(fd)
  }
  return ITEMS / ((performance.now() - t0) / 1000)
}

export async function runWal(pool: readonly BenchEvent[]): Promise<Figure[]> {
  const root = mkdtempSync(join(tmpdir(), 'vq-bench-wal-'))
  const variants: Array<[string, QueueOptions['wal'] | undefined]> = [
    ['memory', undefined],
    ['wal_always', { dir: join(root, 'plain'), syncMode: 'always' }],
    ['wal_always_snappy', { dir: join(root, 'snappy'), syncMode: 'always', compression: true }],
    [
      'wal_always_aesgcm',
      { dir: join(root, 'aes'), syncMode: 'always', encryption: { keyId: 1, keys: { 1: randomBytes(32) } } },
    ],
  ]
  const queues = new Map<string, Queue>()
  const results = new Map<string, number[]>([
    ...variants.map(([n]) => [n, []] as [string, number[]]),
    ['naive', []],
  ])
  try {
    for (const [name, wal] of variants) {
      const q = await startNoopQueue(wal ? { wal } : {})
      await e2eRound(q, pool, ITEMS / 10) // warm-up
      queues.set(name, q)
    }
    await interleave(
      WAL_ROUNDS,
      [
        ...variants.map(([name]) => async () => {
          results.get(name)!.push(await e2eRound(queues.get(name)!, pool, ITEMS))
        }),
        async () => {
          results.get('naive')!.push(await naiveRound(pool, root))
        },
      ],
      (r) =>
        progress(
          `wal round ${r}/${WAL_ROUNDS}: ${[...results].map(([n, v]) => `${n} ${(v.at(-1)! / 1e6).toFixed(2)}`).join(', ')} M items/s`,
        ),
    )
    const q = queues.get('wal_always')!.metrics()
    progress(`  wal_always: ${q.fsyncsTotal} fsyncs for ${q.batchesSentTotal} batches (group commit)`)
  } finally {
    for (const q of queues.values()) await q.stop()
    rmSync(root, { recursive: true, force: true })
  }
  const memory = { name: 'e2e_memory_same_run.items_per_s', value: median(results.get('memory')!) }
  return [
    ...['wal_always', 'wal_always_snappy', 'wal_always_aesgcm'].map((name) => ({
      name: `${name}.items_per_s`,
      value: median(results.get(name)!),
      unit: 'items/s',
      baseline: memory,
    })),
    {
      name: 'peer.naive_json_fdatasync.items_per_s',
      value: median(results.get('naive')!),
      unit: 'items/s',
      baseline: { name: 'wal_always.items_per_s', value: median(results.get('wal_always')!) },
    },
  ]
}

import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createQueue, type Queue } from '@vinequeue/core'
import { describe, expect, it } from 'vitest'
import { waitFor } from '../helpers.ts'
import { fillLog, SMALL, scratch, Target } from './outage-kit.ts'

// A log with a hole or a stray file. Before: a missing middle segment went
// unnoticed (the rest re-delivered, its items gone without a word), and a
// stray segment file after the last one left the queue recovering forever
// (walPendingItems counting phantom items, drain() never resolving).

const { walDir, keep } = scratch('vq-gapped-')
const N = 1500

function queue(dir: string, target: Target): Queue {
  return keep(createQueue({ ...SMALL, send: target.send, wal: { dir, segmentBytes: 16 * 1024 } }))
}

const segments = (dir: string): string[] =>
  readdirSync(dir)
    .filter((n) => n.endsWith('.wal'))
    .sort()
const name = (seq: number): string => `${String(seq).padStart(20, '0')}.wal`

/** N items in the log (target down), the queue stopped. */
const backlog = (dir: string): Promise<void> => fillLog((target) => queue(dir, target), N)

/** Rejects if `p` has not settled in `ms` (instead of hanging the test). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    p,
    new Promise<T>((_, reject) =>
      setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms),
    ),
  ])
}

/** Starts a queue on `dir`; returns it, its target and its errors once drain() resolved. */
async function restart(dir: string) {
  const target = new Target()
  const q = queue(dir, target)
  const errors: Array<Error & { code?: string }> = []
  q.on('error', (e) => errors.push(e))
  let recovered = false
  q.on('recovered', () => {
    recovered = true
  })
  await q.start()
  await within(q.drain(), 15_000, 'drain()')
  await waitFor(() => recovered)
  await waitFor(() => q.metrics().walPendingItems === 0) // (the watermark moves every 100 ms)
  return { q, target, errors }
}

describe('a gap in the log is damage', () => {
  it('a missing middle segment: the rest is delivered, the gap counted and reported (error event, health), drain() resolves', async () => {
    const dir = walDir()
    await backlog(dir)
    const names = segments(dir)
    expect(names.length).toBeGreaterThanOrEqual(3)
    const gone = names[1]!
    const from = Number.parseInt(gone, 10)
    const to = Number.parseInt(names[2]!, 10)
    unlinkSync(join(dir, gone))

    const { q, target, errors } = await restart(dir)
    for (let i = 0; i < N; i++)
      expect(target.seen.get(i), `item ${i}`).toBe(i >= from && i < to ? undefined : 1)
    const gap = errors.find((e) => e.code === 'VQ_WAL_DAMAGED')
    expect(gap?.message).toContain(`sequence numbers ${from}–${to - 1} (${to - from} items) are in no frame`)
    expect(q.metrics()).toMatchObject({ walGapsTotal: 1, recovering: false, walPendingItems: 0 })
    expect(q.health()).toMatchObject({ status: 'degraded' })
    expect(q.health().reasons.join('\n')).toContain(
      `1 gap(s) in sequence numbers (${to - from} item(s) missing)`,
    )
  })
})

describe('a stray segment file after the last one', () => {
  it('empty: recovery finishes, no phantom items, drain() resolves; the gap is reported', async () => {
    const dir = walDir()
    await backlog(dir)
    writeFileSync(join(dir, name(N + 5000)), '')
    const { q, target, errors } = await restart(dir)
    expect(target.exactlyOnce(N)).toBe(true)
    expect(q.metrics()).toMatchObject({ recovering: false, walPendingItems: 0, walGapsTotal: 1 })
    expect(
      errors.some((e) => e.code === 'VQ_WAL_DAMAGED' && e.message.includes('at the end of the log')),
    ).toBe(true)
  })

  it('full of garbage: the same, and its bytes are kept in quarantine (not truncated away unseen)', async () => {
    const dir = walDir()
    await backlog(dir)
    const garbage = randomBytes(5000)
    writeFileSync(join(dir, name(N + 5000)), garbage)
    const { q, target, errors } = await restart(dir)
    expect(target.exactlyOnce(N)).toBe(true)
    expect(q.metrics()).toMatchObject({ recovering: false, walPendingItems: 0, walQuarantinedTotal: 1 })
    const copy = `${name(N + 5000)}@0-5000.corrupt`
    expect(readFileSync(join(dir, 'quarantine', copy))).toEqual(garbage)
    expect(errors.some((e) => e.code === 'VQ_WAL_DAMAGED' && e.message.includes(copy))).toBe(true)
  })
})

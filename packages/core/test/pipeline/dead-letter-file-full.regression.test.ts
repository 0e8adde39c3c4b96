import { readFileSync, renameSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { createQueue, type DeadLetter, type Queue, SendError } from '@vinequeue/core'
import { afterEach, describe, expect, it } from 'vitest'
import { tempDir, waitFor } from '../helpers.ts'

// /dev/full accepts open() and fails every write with ENOSPC (a full disk);
// the dead-letter path is a symlink to it, later pointed at a real file.
const cleanups: Array<() => void> = []
const queues: Queue[] = []
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.stop({ timeoutMs: 2000 })))
  for (const c of cleanups.splice(0)) c()
})

describe('deadLetterFile on a full disk (regression: the pipeline thread died)', () => {
  it('reports the failure, hands the items to onDeadLetter, keeps running, and writes them once it can', async () => {
    const { dir, cleanup } = tempDir()
    cleanups.push(cleanup)
    const path = join(dir, 'dead.ndjson')
    symlinkSync('/dev/full', path)
    const letters: DeadLetter[] = []
    const errors: Error[] = []
    const delivered: unknown[] = []
    const q = createQueue({
      send: async (batch) => {
        const items = batch.items() as Array<{ poison?: boolean }>
        if (items.some((i) => i.poison)) throw new SendError('poison', { retryable: false, status: 400 })
        delivered.push(...items)
      },
      deadLetterFile: path,
      onDeadLetter: (d) => letters.push(d),
      flushIntervalMs: 5,
    })
    queues.push(q)
    q.on('error', (err) => errors.push(err))
    await q.start()
    q.enqueue({ i: 1, poison: true })
    q.enqueue({ i: 2, poison: true })
    await q.drain()
    await waitFor(() => errors.length > 0)
    expect(letters.flatMap((d) => d.items)).toEqual([
      { i: 1, poison: true },
      { i: 2, poison: true },
    ])
    expect(errors[0]).toMatchObject({
      name: 'DeadLetterFileError',
      code: 'VQ_DEAD_LETTER_FILE',
      path,
      count: 2,
    })
    expect((errors[0]!.cause as { code?: string }).code).toBe('ENOSPC')
    expect(q.health()).toMatchObject({ status: 'degraded' })
    expect(q.health().reasons.join()).toMatch(
      /deadLetterFile cannot be written \(ENOSPC\): 2 dead-lettered item/,
    )

    // The queue is still up: good items are delivered.
    for (let i = 10; i < 20; i++) q.enqueue({ i })
    await q.drain()
    expect(delivered).toHaveLength(10)

    // The disk has room again: the kept lines are written, in order, whole.
    const real = join(dir, 'real.ndjson')
    const next = join(dir, 'next-link')
    symlinkSync(real, next)
    renameSync(next, path)
    await waitFor(() => q.health().status === 'ok')
    const lines = readFileSync(real, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(lines.map((l) => l.item)).toEqual([
      { i: 1, poison: true },
      { i: 2, poison: true },
    ])
    expect(lines[0].reason).toMatch(/poison/)
    const report = await q.stop({ timeoutMs: 2000 })
    expect(report.undeliveredCount).toBe(0)
  })

  it('with the file still failing at stop(): stop() resolves and reports it', async () => {
    const { dir, cleanup } = tempDir()
    cleanups.push(cleanup)
    const path = join(dir, 'dead.ndjson')
    symlinkSync('/dev/full', path)
    const errors: Error[] = []
    const q = createQueue({
      send: async () => {
        throw new SendError('no', { retryable: false })
      },
      deadLetterFile: path,
      flushIntervalMs: 5,
    })
    q.on('error', (err) => errors.push(err))
    await q.start()
    q.enqueue({ i: 1 })
    await q.drain()
    const report = await q.stop({ timeoutMs: 2000 })
    expect(report.undeliveredCount).toBe(0)
    expect(errors.length).toBeGreaterThanOrEqual(2) // at the write, and again at stop
    expect(errors.every((e) => (e as { code?: string }).code === 'VQ_DEAD_LETTER_FILE')).toBe(true)
  })
})

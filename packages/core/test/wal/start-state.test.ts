import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createQueue, type Queue } from '@vinequeue/core'
import { describe, expect, it } from 'vitest'
import { fillLog, SMALL, scratch, Target } from './outage-kit.ts'

// start() resolves once the pipeline thread has opened the log, before the
// rest of that thread's code has loaded: what the queue says of the log —
// metrics, health, damage found while opening — must be true the moment
// start() resolves, not a few milliseconds later.

const { walDir, keep } = scratch('vq-start-state-')
const N = 1500

function queue(dir: string, target: Target): Queue {
  return keep(createQueue({ ...SMALL, send: target.send, wal: { dir, segmentBytes: 16 * 1024 } }))
}

/** N items in the log (target down), the queue stopped. */
const backlog = (dir: string): Promise<void> => fillLog((target) => queue(dir, target), N)

describe('what start() says of the log is true when it resolves', () => {
  it('a backlog: recovering, with every pending item counted', async () => {
    const dir = walDir()
    await backlog(dir)
    const target = new Target()
    target.down = true
    const q = queue(dir, target)
    await q.start()
    expect(q.metrics()).toMatchObject({ recovering: true, walPendingItems: N })
    target.down = false
    await q.drain()
    expect(target.exactlyOnce(N)).toBe(true)
  })

  it('damage found while opening: its error event, the damage condition and the counts', async () => {
    const dir = walDir()
    await backlog(dir)
    // A segment file of garbage after the last one: scanned at open, its bytes kept in quarantine.
    const stray = `${String(N + 5000).padStart(20, '0')}.wal`
    writeFileSync(join(dir, stray), randomBytes(5000))
    const target = new Target()
    target.down = true
    const q = queue(dir, target)
    const errors: Array<Error & { code?: string }> = []
    q.on('error', (e) => errors.push(e))
    await q.start()
    expect(errors.some((e) => e.code === 'VQ_WAL_DAMAGED' && e.message.includes(`${stray}@0-5000`))).toBe(
      true,
    )
    expect(q.health().status).toBe('degraded')
    expect(q.health().reasons.join('\n')).toMatch(/damage found since start/)
    expect(q.metrics()).toMatchObject({ walQuarantinedTotal: 1, recovering: true })
    target.down = false
    await q.drain()
    expect(target.exactlyOnce(N)).toBe(true)
  })
})

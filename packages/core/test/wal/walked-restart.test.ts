import { readdirSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { createQueue } from '@vinequeue/core'
import { describe, expect, it } from 'vitest'
import { SinkDouble, waitFor } from '../helpers.ts'
import { scratch } from './outage-kit.ts'

// A restart after a crash whose log ends in a large segment (4 MiB or more):
// the log walks that segment's frame headers at open instead of reading it
// whole, leaves its payloads to the re-delivery and appends to a new
// segment. Through the queue, nothing is lost or reordered.
const { walDir, keep } = scratch('vq-walked-')

describe('restart on a crashed log with a large last segment', () => {
  it('re-delivers the whole backlog, then what was enqueued after the restart', async () => {
    const dir = walDir()
    const down = createQueue({
      send: async () => {
        throw new Error('target down')
      },
      wal: { dir, syncMode: 'always' },
      maxBatchSize: 200,
      flushIntervalMs: 5,
      retryInitialDelayMs: 5,
    })
    await down.start()
    const pad = 'p'.repeat(1000)
    const backlog = 6000 // ~6 MiB, in one 64 MiB segment
    for (let i = 0; i < backlog; i++) await down.enqueueAsync({ i, pad })
    await down.flush() // (durable: WAL-first)
    await down.stop({ timeoutMs: 0 })
    // As after a crash: no clean-close record, so the last segment is not trusted as closed.
    rmSync(join(dir, 'clean'), { force: true })
    const segments = readdirSync(dir).filter((n) => n.endsWith('.wal'))
    expect(segments).toHaveLength(1)
    expect(statSync(join(dir, segments[0]!)).size).toBeGreaterThanOrEqual(4 * 1024 * 1024)

    const sink = new SinkDouble()
    const up = keep(createQueue({ send: sink.send, wal: { dir, syncMode: 'always' }, flushIntervalMs: 5 }))
    await up.start()
    for (let i = backlog; i < backlog + 100; i++) up.enqueue({ i, pad })
    await up.drain()
    await waitFor(() => up.metrics().recoveredTotal === backlog)
    const ids = (sink.items as Array<{ i: number }>).map((x) => x.i)
    // Each item at least once (a batch may come twice), and in order of first arrival.
    const firsts = ids.filter((id, k) => ids.indexOf(id) === k)
    expect(firsts).toEqual([...Array(backlog + 100).keys()])
    expect(up.metrics().walCorruptRegions).toBe(0)
  })
})

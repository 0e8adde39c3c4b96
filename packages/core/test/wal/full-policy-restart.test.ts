import { join } from 'node:path'
import { createQueue, type QueueOptions } from '@vinequeue/core'
import { describe, expect, it } from 'vitest'
import { waitFor } from '../helpers.ts'
import { payload, SMALL, scratch, Target } from './outage-kit.ts'

// wal.fullPolicy through a real restart: the log reaches wal.maxBytes while
// the target is down, the queue is stopped, and a new queue on the same
// directory delivers the rest with the target up. What was dropped is
// counted, everything else arrives, nothing twice:
//   delivered (both runs) + droppedByReason.wal (first run) == enqueued.
const { root, keep } = scratch('vq-full-restart-')

const cases: Array<{ mode: 'first' | 'spill'; fullPolicy: 'dropOldest' | 'dropNewest' }> = [
  { mode: 'first', fullPolicy: 'dropOldest' },
  { mode: 'spill', fullPolicy: 'dropOldest' },
  { mode: 'first', fullPolicy: 'dropNewest' },
]

describe('wal.fullPolicy through a restart', () => {
  for (const { mode, fullPolicy } of cases) {
    it(`'${fullPolicy}', mode '${mode}': at maxBytes with the target down, stop, restart with it up: delivered + dropped == enqueued, none twice`, async () => {
      const wal: NonNullable<QueueOptions['wal']> = {
        dir: join(root(), 'wal'),
        mode,
        segmentBytes: 16 * 1024,
        maxBytes: 64 * 1024,
        fullPolicy,
      }
      const N = 10_000 // ~1 MB: 15 times the log's maxBytes
      const down = new Target()
      down.down = true
      const walFull: boolean[] = []
      const q1 = createQueue({ ...SMALL, send: down.send, wal })
      q1.on('walFull', (full) => walFull.push(full))
      await q1.start()
      for (let i = 0; i < N; i++) await q1.enqueueAsync({ i, payload })
      await q1.flush() // every item durable, or dropped and counted
      // (dropOldest makes room before the log is full; dropNewest reports it full.)
      expect(walFull[0]).toBe(fullPolicy === 'dropNewest' ? true : undefined)
      const report = await q1.stop({ timeoutMs: 100 })
      const m1 = q1.metrics()
      const dropped = m1.droppedByReason.wal
      expect(dropped).toBeGreaterThan(N / 2)
      expect(m1.walDroppedTotal).toBe(dropped)
      expect(m1.droppedTotal).toBe(dropped)
      expect(m1.sentTotal).toBe(0)
      expect(down.seen.size).toBe(0)
      // The log keeps exactly what was not dropped.
      expect(report.walPendingItems).toBe(N - dropped)

      const up = new Target()
      const q2 = createQueue({ ...SMALL, send: up.send, wal })
      keep(q2)
      await q2.start()
      await q2.drain()
      const m2 = q2.metrics()
      expect({ delivered: up.seen.size, dropped, sum: up.seen.size + dropped }).toEqual({
        delivered: N - dropped,
        dropped,
        sum: N,
      })
      const twice = [...up.seen].filter(([, n]) => n !== 1).map(([i]) => i)
      expect(twice).toEqual([])
      expect(m2).toMatchObject({ recoveredTotal: N - dropped, sentTotal: N - dropped })
      expect(m2.droppedByReason.wal).toBe(0)
      // dropOldest keeps the newest items, dropNewest the oldest.
      expect(up.seen.has(fullPolicy === 'dropOldest' ? N - 1 : 0)).toBe(true)
      await waitFor(() => q2.metrics().walPendingItems === 0)
    })
  }
})

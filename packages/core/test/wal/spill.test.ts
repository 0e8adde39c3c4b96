import { createQueue } from '@vinequeue/core'
import { describe, expect, it } from 'vitest'
import { waitFor } from '../helpers.ts'
import { feed, payload, SMALL, scratch, Target } from './outage-kit.ts'

const { walDir, keep } = scratch('vq-spill-')

describe('spilling to the WAL when memory is full', () => {
  for (const mode of ['first', 'spill'] as const) {
    it(`mode '${mode}': an outage longer than memory holds spills to the log; flush() resolves while the target is down; everything arrives once`, async () => {
      const target = new Target()
      target.down = true
      const q = createQueue({
        ...SMALL,
        send: target.send,
        wal: { dir: walDir(), mode, segmentBytes: 64 * 1024 },
      })
      keep(q)
      await q.start()
      const N = 20_000 // ~2 MB: 30 times the ring
      await feed(q, 0, N)
      await q.flush() // durable in the log, although nothing was delivered
      const m = q.metrics()
      expect(m.sentTotal).toBe(0)
      expect(m.walSpilledTotal).toBeGreaterThan(N / 2)
      expect(m.walPendingItems).toBeGreaterThan(N / 2)
      target.down = false
      await q.drain()
      expect(target.exactlyOnce(N)).toBe(true)
      await waitFor(() => q.metrics().walPendingItems === 0)
      // Acknowledged segments are deleted once the `ack` file covers them (within 100 ms), which
      // may come after the acknowledgement records that made walPendingItems 0.
      await waitFor(() => q.metrics().walSize < 3 * 64 * 1024)
    })
  }

  it("mode 'spill': with a healthy target nothing is written to the log", async () => {
    const target = new Target()
    // (Default ring: the 5000 items fit below its soft limit.)
    const q = createQueue({
      ...SMALL,
      ringBytes: undefined,
      send: target.send,
      wal: { dir: walDir(), mode: 'spill' },
    })
    keep(q)
    await q.start()
    await feed(q, 0, 5000)
    await q.drain()
    expect(target.exactlyOnce(5000)).toBe(true)
    expect(q.metrics().walSpilledTotal).toBe(0)
    expect(q.metrics().fsyncsTotal).toBe(0)
  })

  it('a spilled backlog survives a stop and is re-delivered after the restart (recovery runs while new items are accepted)', async () => {
    const dir = walDir()
    const down = new Target()
    down.down = true
    const q1 = createQueue({ ...SMALL, send: down.send, wal: { dir, segmentBytes: 64 * 1024 } })
    await q1.start()
    await feed(q1, 0, 10_000)
    await q1.flush()
    const report = await q1.stop({ timeoutMs: 50 })
    expect(report.walPendingItems).toBe(10_000)

    const up = new Target()
    const q2 = createQueue({ ...SMALL, send: up.send, wal: { dir, segmentBytes: 64 * 1024 } })
    keep(q2)
    const recovered = new Promise<{ items: number }>((resolve) => q2.once('recovered', resolve))
    await q2.start()
    // New items go in while the old ones are being re-delivered.
    await feed(q2, 10_000, 2000)
    await q2.drain()
    expect(up.exactlyOnce(12_000)).toBe(true)
    expect((await recovered).items).toBe(10_000)
    expect(q2.metrics().recovering).toBe(false)
  })

  it("wal.fullPolicy 'dropNewest': at maxBytes new batches are dropped and counted; nothing else is lost", async () => {
    const target = new Target()
    target.down = true
    const q = createQueue({
      ...SMALL,
      send: target.send,
      wal: { dir: walDir(), segmentBytes: 16 * 1024, maxBytes: 64 * 1024, fullPolicy: 'dropNewest' },
    })
    keep(q)
    await q.start()
    const N = 10_000
    await feed(q, 0, N)
    await q.flush()
    const dropped = q.metrics().droppedByReason.wal
    expect(dropped).toBeGreaterThan(0)
    expect(q.metrics().walSize).toBeLessThanOrEqual(64 * 1024)
    target.down = false
    await q.drain()
    expect(target.seen.size + dropped).toBe(N)
    for (const n of target.seen.values()) expect(n).toBe(1)
    // The oldest items survived.
    expect(target.seen.has(0)).toBe(true)
  })

  it("wal.fullPolicy 'dropOldest': at maxBytes the oldest segment is dropped and counted", async () => {
    const target = new Target()
    target.down = true
    const q = createQueue({
      ...SMALL,
      send: target.send,
      wal: { dir: walDir(), segmentBytes: 16 * 1024, maxBytes: 64 * 1024, fullPolicy: 'dropOldest' },
    })
    keep(q)
    await q.start()
    const N = 10_000
    await feed(q, 0, N)
    await q.flush()
    target.down = false
    await q.drain()
    const dropped = q.metrics().droppedByReason.wal
    expect(dropped).toBeGreaterThan(0)
    expect(target.seen.size + dropped).toBe(N)
    for (const n of target.seen.values()) expect(n).toBe(1)
    // The newest items survived.
    expect(target.seen.has(N - 1)).toBe(true)
  })

  it("wal.fullPolicy 'reject': at maxBytes enqueue throws QueueFullError until there is room", async () => {
    const target = new Target()
    target.down = true
    const q = createQueue({
      ...SMALL,
      send: target.send,
      wal: { dir: walDir(), segmentBytes: 16 * 1024, maxBytes: 64 * 1024, fullPolicy: 'reject' },
    })
    keep(q)
    await q.start()
    let accepted = 0
    let rejected: unknown
    for (let i = 0; i < 100_000 && !rejected; i++) {
      try {
        await q.enqueueAsync({ i, payload }, { maxBlockMs: 2000 })
        accepted++
      } catch (err) {
        rejected = err
      }
    }
    expect(rejected).toMatchObject({ code: 'VQ_QUEUE_FULL' })
    expect(q.metrics().walFull).toBe(true)
    expect(q.health().reasons.join()).toMatch(/maxBytes/)
    target.down = false
    await waitFor(() => !q.metrics().walFull)
    expect(q.enqueue({ i: accepted, payload })).toBe(true)
    await q.drain()
    expect(target.exactlyOnce(accepted + 1)).toBe(true)
  })

  it("syncMode 'periodic': batches go out once written; fsyncs follow the interval, not the batches", async () => {
    const target = new Target()
    const q = createQueue({
      ...SMALL,
      send: target.send,
      wal: { dir: walDir(), syncMode: 'periodic', syncIntervalMs: 50 },
    })
    keep(q)
    await q.start()
    await feed(q, 0, 5000)
    await q.drain()
    expect(target.exactlyOnce(5000)).toBe(true)
    const m = q.metrics()
    expect(m.batchesSentTotal).toBeGreaterThanOrEqual(50)
    expect(m.fsyncsTotal).toBeLessThan(m.batchesSentTotal)
  })
})

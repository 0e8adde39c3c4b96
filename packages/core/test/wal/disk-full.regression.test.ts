import { readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createQueue, type Queue } from '@vinequeue/core'
import { afterEach, describe, expect, it } from 'vitest'
import { waitFor } from '../helpers.ts'
import { feed, SMALL, scratch, Target } from './outage-kit.ts'

// The WAL on a device it fills itself: the target is down until the disk is
// full, then comes back. Before, the watermark could not be written
// (`ack.tmp`: ENOSPC), so no delivered segment was ever deleted and no space
// came back: items in memory were never sent, health() said ok, and every
// restart re-delivered the whole backlog.

const { root, keep } = scratch('vq-disk-full-')
const deviceFs = new URL('../fixtures/device-fs.mjs', import.meta.url)
const DEVICE_BYTES = 384 * 1024

afterEach(() => {
  delete process.env.VQ_DEVICE_DIR
  delete process.env.VQ_DEVICE_BYTES
})

/** Bytes the log's files take on the device, in 4 KiB blocks (a file deleted while listing counts 0). */
function usedBytes(dir: string): number {
  let n = 0
  for (const name of readdirSync(dir)) {
    const st = statSync(join(dir, name), { throwIfNoEntry: false })
    if (!st) continue
    n += st.isDirectory() ? usedBytes(join(dir, name)) : Math.ceil(st.size / 4096) * 4096
  }
  return n
}

function queue(dir: string, target: Target): Queue {
  return keep(
    createQueue({
      ...SMALL,
      send: target.send,
      wal: { dir, fs: deviceFs, segmentBytes: 16 * 1024, maxBytes: 64 * 1024 * 1024 },
    }),
  )
}

describe('the WAL fills its own disk', () => {
  it('target down until the disk is full, then back: everything is delivered, segments deleted, space back, no restart; health() and an error event said so; a restart re-delivers nothing', async () => {
    const device = root()
    const dir = join(device, 'wal')
    process.env.VQ_DEVICE_DIR = device
    process.env.VQ_DEVICE_BYTES = String(DEVICE_BYTES)
    const target = new Target()
    target.down = true
    const q = queue(dir, target)
    const errors: Error[] = []
    q.on('error', (e) => errors.push(e))
    await q.start()
    const N = 8000 // ~800 KB: twice the device, plus the ring
    const feeding = feed(q, 0, N)
    // The disk fills: appends fail with ENOSPC, producers wait for room.
    await waitFor(() => errors.some((e) => e.message.includes('ENOSPC')), 30_000)
    expect((errors[0] as { code?: string }).code).toBe('VQ_WAL_IO')
    await waitFor(() => /write-ahead log cannot be written \(.*ENOSPC/.test(q.health().reasons.join('\n')))
    expect(q.health().status).toBe('degraded')
    expect(usedBytes(device)).toBeGreaterThan(DEVICE_BYTES - 32 * 1024)
    expect(target.seen.size).toBe(0)

    target.down = false
    await feeding // every item accepted: the log took the rest once space came back
    await q.drain()
    expect(target.exactlyOnce(N)).toBe(true)
    await waitFor(() => q.metrics().walPendingItems === 0)
    // Delivered segments were deleted: the space is back (the segment being
    // written and the log's 64 KiB reserve stay).
    await waitFor(() => usedBytes(device) < DEVICE_BYTES / 2)
    await waitFor(() => q.health().status === 'ok')
    await q.stop()

    // A restart does not re-deliver what was delivered.
    const again = new Target()
    const q2 = queue(dir, again)
    await q2.start()
    await q2.drain()
    expect(q2.metrics().recoveredTotal).toBe(0)
    expect(again.seen.size).toBe(0)
  })

  it('a stop and a restart while the disk is full: the log opens (the lock takes its reserve) and the backlog goes out once the target is back; nothing is lost or sent twice', async () => {
    const device = root()
    const dir = join(device, 'wal')
    process.env.VQ_DEVICE_DIR = device
    process.env.VQ_DEVICE_BYTES = String(DEVICE_BYTES)
    const down = new Target()
    down.down = true
    const q = queue(dir, down)
    const errors: Error[] = []
    q.on('error', (e) => errors.push(e))
    await q.start()
    let accepted = 0
    const feeding = (async () => {
      for (let i = 0; ; i++) {
        await q.enqueueAsync({ i, payload: 'x'.repeat(80) })
        accepted = i + 1
      }
    })().catch(() => undefined) // (ends with QueueClosedError at the stop)
    await waitFor(() => errors.some((e) => e.message.includes('ENOSPC')), 30_000)
    const report = await q.stop({ timeoutMs: 200 })
    await feeding
    // What the log could not take is in the report, never dropped silently.
    const inMemory = (report.undelivered() as Array<{ i: number }>).map((item) => item.i)
    expect(report.walPendingItems).toBeGreaterThan(0)
    // The lock's block, given back at the stop, is taken by someone else: the disk is full.
    writeFileSync(join(device, 'other'), new Uint8Array(8192))

    const target = new Target()
    const q2 = queue(dir, target)
    await q2.start() // before: ENOSPC creating the lock
    await q2.drain()
    const delivered = [...target.seen.keys()]
    for (const n of target.seen.values()) expect(n).toBe(1)
    // Every accepted item was delivered after the restart or handed back by the stop.
    const all = new Set([...delivered, ...inMemory])
    for (let i = 0; i < accepted; i++) expect(all.has(i), `item ${i}`).toBe(true)
    expect(delivered.length).toBeGreaterThanOrEqual(report.walPendingItems - inMemory.length)
  })
})

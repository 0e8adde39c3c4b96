import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createQueue, type Queue } from '@vinequeue/core'
import { encodeFrame, FRAME_HEADER_BYTES, scanSegment } from '@vinequeue/wal'
import { describe, expect, it } from 'vitest'
import { waitFor } from '../helpers.ts'
import { SMALL, scratch, Target } from './outage-kit.ts'

// An encrypted WAL restarted with the wrong key (same key id, other bytes).
// Before, every frame failed authentication, was skipped as "damaged", the
// watermark passed it and the segments were deleted: a third start with the
// right key found nothing. Now the queue stops, says so and keeps everything;
// a frame that fails among good ones of its key is damage: quarantined.

const { walDir, keep } = scratch('vq-wrong-key-')
const keyA = randomBytes(32)
const keyB = randomBytes(32)
const N = 1000

function queue(dir: string, key: Buffer, target: Target): Queue {
  return keep(
    createQueue({
      ...SMALL,
      send: target.send,
      wal: { dir, segmentBytes: 16 * 1024, encryption: { keyId: 1, keys: { 1: key } } },
    }),
  )
}

/** N items written with keyA while the target is down; the queue stopped. */
async function backlog(dir: string): Promise<void> {
  const down = new Target()
  down.down = true
  const q = queue(dir, keyA, down)
  await q.start()
  for (let i = 0; i < N; i++) q.enqueue({ i, pad: 'x'.repeat(40) })
  await q.flush()
  const report = await q.stop({ timeoutMs: 200 })
  expect(report.walPendingItems).toBe(N)
}

const segmentBytes = (dir: string): number =>
  readdirSync(dir)
    .filter((n) => n.endsWith('.wal'))
    .reduce((sum, n) => sum + statSync(join(dir, n)).size, 0)

describe('a wrong encryption key', () => {
  it('stops the re-delivery, reports it (error event, health() down) and keeps every frame; a restart with the right key delivers everything', async () => {
    const dir = walDir()
    await backlog(dir)
    const onDisk = segmentBytes(dir)

    const target = new Target()
    const wrong = queue(dir, keyB, target)
    const errors: Array<Error & { code?: string }> = []
    wrong.on('error', (e) => errors.push(e))
    await wrong.start()
    await waitFor(() => errors.some((e) => e.code === 'VQ_WAL_DECRYPT'))
    await waitFor(() => wrong.health().status === 'down')
    expect(wrong.health().reasons.join('\n')).toMatch(/key id 1 fail authentication.*probably wrong/)
    expect(wrong.metrics().walStalled).toBe(true)
    expect(wrong.metrics().walQuarantinedTotal).toBe(0)
    // Nothing skipped, nothing delivered, nothing deleted — also across a stop.
    await new Promise((r) => setTimeout(r, 300))
    expect(target.calls).toBe(0)
    const report = await wrong.stop({ timeoutMs: 200 })
    expect(report.walPendingItems).toBeGreaterThanOrEqual(N)
    expect(segmentBytes(dir)).toBeGreaterThanOrEqual(onDisk)

    const right = new Target()
    const q = queue(dir, keyA, right)
    await q.start()
    await q.drain()
    expect(right.exactlyOnce(N)).toBe(true)
    expect(q.metrics().walCorruptRegions).toBe(0)
  })

  it('one tampered frame among good ones of its key is damage: copied to quarantine, counted, announced; the others are delivered', async () => {
    const dir = walDir()
    await backlog(dir)
    // Tamper with the very first frame's ciphertext, CRCs made valid again
    // (the kind of change only authentication catches).
    const first = readdirSync(dir)
      .filter((n) => n.endsWith('.wal'))
      .sort()[0]!
    const path = join(dir, first)
    const bytes = Buffer.from(readFileSync(path))
    const victim = scanSegment(bytes).frames[0]!
    const payload = Buffer.from(bytes.subarray(victim.offset + FRAME_HEADER_BYTES, victim.end))
    payload[payload.byteLength >> 1]! ^= 0x01
    bytes.set(encodeFrame(payload, victim.header), victim.offset)
    writeFileSync(path, bytes)
    const lost = victim.header

    const target = new Target()
    const q = queue(dir, keyA, target)
    const errors: Array<Error & { code?: string }> = []
    q.on('error', (e) => errors.push(e))
    await q.start()
    await q.drain()
    for (let i = 0; i < N; i++) {
      const inLost = i >= lost.firstSeq && i < lost.firstSeq + lost.count
      expect(target.seen.get(i), `item ${i}`).toBe(inLost ? undefined : 1)
    }
    const damage = errors.find((e) => e.code === 'VQ_WAL_DAMAGED')
    expect(damage?.message).toMatch(/fails authentication with key 1 while other frames of that key pass/)
    expect(q.metrics()).toMatchObject({ walQuarantinedTotal: 1, walStalled: false })
    expect(q.health().status).toBe('degraded')
    expect(q.health().reasons.join('\n')).toMatch(/damage found since start/)
    const [copy] = readdirSync(join(dir, 'quarantine'))
    expect(copy).toBe(`${first}@${victim.offset}-${victim.end}.auth`)
    expect(readFileSync(join(dir, 'quarantine', copy!))).toEqual(bytes.subarray(victim.offset, victim.end))
  })
})

import { randomBytes } from 'node:crypto'
import {
  appendFileSync,
  closeSync,
  openSync,
  readSync,
  rmSync,
  statSync,
  truncateSync,
  writeSync,
} from 'node:fs'
import { join } from 'node:path'
import { FRAME_HEADER_BYTES, type WalDamage, WriteAheadLog } from '@vinequeue/wal'
import { describe, expect, it } from 'vitest'
import { segmentNames, tempDirs } from './temp-dirs.ts'

// A log reopened after a crash (no `clean` record) with a last segment of at
// least 4 MiB: its frame headers are walked, not every payload checked, so a
// restart with a full 64 MiB segment does not read all of it. What the walk
// trusts, what it leaves to readers and when it falls back to the scan.

const tempDir = tempDirs('vq-wal-walk-')
const segmentFiles = segmentNames
const readAll = (wal: WriteAheadLog) =>
  [...wal.frames()].map((f) => ({ firstSeq: f.firstSeq, count: f.count, payload: Buffer.from(f.payload) }))

/** 64 KiB payloads (incompressible; the log does not compress by default). */
const PAYLOAD_BYTES = 64 * 1024
const FRAME_BYTES = FRAME_HEADER_BYTES + PAYLOAD_BYTES
/** 5 MiB of frames: one segment over the 4 MiB from which the last one is walked. */
const FRAMES = 80

/**
 * Writes FRAMES frames of 3 items, synced, and leaves the log as a crash
 * would: closed (lock released) but without its `clean` record.
 */
function writeAndCrash(dir: string) {
  const wal = WriteAheadLog.open(dir)
  const written = []
  for (let i = 0; i < FRAMES; i++) {
    const payload = randomBytes(PAYLOAD_BYTES)
    written.push({ firstSeq: wal.append(payload, 3), count: 3, payload })
  }
  wal.close()
  rmSync(join(dir, 'clean'))
  const [segment] = segmentFiles(dir)
  return { written, path: join(dir, segment!) }
}

function flipByte(path: string, at: number): void {
  const fd = openSync(path, 'r+')
  const b = Buffer.alloc(1)
  readSync(fd, b, 0, 1, at)
  b[0]! ^= 0xff
  writeSync(fd, b, 0, 1, at)
  closeSync(fd)
}

describe('a large last segment after a crash is walked, not scanned', () => {
  it('opens without checking the payloads, appends to a new segment, reads everything back in order', () => {
    const dir = tempDir()
    const { written, path } = writeAndCrash(dir)
    expect(statSync(path).size).toBe(FRAMES * FRAME_BYTES)
    const wal = WriteAheadLog.open(dir)
    expect(wal.recovery).toMatchObject({
      walked: true,
      cleanClose: false,
      frames: 0,
      pendingItems: FRAMES * 3,
      truncatedBytes: 0,
      corruptRegions: 0,
    })
    expect(wal.nextSeq).toBe(FRAMES * 3)
    const more = randomBytes(100)
    expect(wal.append(more, 2)).toBe(FRAMES * 3)
    expect(segmentFiles(dir)).toHaveLength(2) // the walked segment is never written again
    expect(readAll(wal)).toEqual([...written, { firstSeq: FRAMES * 3, count: 2, payload: more }])
    expect(wal.corruptRegions).toBe(0)
    wal.close()
  })

  it('a frame the crash cut short is cut at open, as a scan would', () => {
    const dir = tempDir()
    const { written, path } = writeAndCrash(dir)
    truncateSync(path, FRAMES * FRAME_BYTES - 1000)
    const wal = WriteAheadLog.open(dir)
    expect(wal.recovery).toMatchObject({
      walked: true,
      truncatedBytes: FRAME_BYTES - 1000,
      corruptRegions: 0,
    })
    expect(statSync(path).size).toBe((FRAMES - 1) * FRAME_BYTES)
    expect(wal.nextSeq).toBe((FRAMES - 1) * 3)
    expect(readAll(wal)).toEqual(written.slice(0, -1))
    wal.close()
  })

  it('a few bytes past the last frame (less than a header) are cut', () => {
    const dir = tempDir()
    const { written, path } = writeAndCrash(dir)
    appendFileSync(path, Buffer.alloc(10, 7))
    const wal = WriteAheadLog.open(dir)
    expect(wal.recovery).toMatchObject({ walked: true, truncatedBytes: 10 })
    expect(readAll(wal)).toEqual(written)
    wal.close()
  })

  it('a damaged payload inside is found by the reader when it gets there: never read as data, counted, the rest delivered', () => {
    const dir = tempDir()
    const { written, path } = writeAndCrash(dir)
    flipByte(path, 5 * FRAME_BYTES + FRAME_HEADER_BYTES + 100) // in the payload of the sixth frame
    const damage: WalDamage[] = []
    const wal = WriteAheadLog.open(dir, { onDamage: (d) => damage.push(d) })
    expect(wal.recovery).toMatchObject({ walked: true, corruptRegions: 0 })
    expect(readAll(wal)).toEqual([...written.slice(0, 5), ...written.slice(6)])
    expect(wal.corruptRegions).toBe(1)
    expect(damage.map((d) => d.kind)).toContain('corrupt')
    wal.close()
  })

  it('a damaged header falls back to the scan, which counts the damage at open', () => {
    const dir = tempDir()
    const { written, path } = writeAndCrash(dir)
    flipByte(path, 5 * FRAME_BYTES + 9) // the sixth frame's first sequence number
    const wal = WriteAheadLog.open(dir)
    expect(wal.recovery).toMatchObject({ walked: false, corruptRegions: 1, frames: FRAMES - 1 })
    expect(readAll(wal)).toEqual([...written.slice(0, 5), ...written.slice(6)])
    wal.close()
  })

  it('a damaged last payload (a write the crash left half done) falls back to the scan, which cuts it', () => {
    const dir = tempDir()
    const { written, path } = writeAndCrash(dir)
    flipByte(path, FRAMES * FRAME_BYTES - 10)
    const wal = WriteAheadLog.open(dir)
    expect(wal.recovery).toMatchObject({ walked: false, frames: FRAMES - 1 })
    expect(wal.nextSeq).toBe((FRAMES - 1) * 3)
    expect(readAll(wal)).toEqual(written.slice(0, -1))
    wal.close()
  })

  it('small frames of every size: headers read through a window, across its edges', () => {
    const dir = tempDir()
    const wal = WriteAheadLog.open(dir)
    const written = []
    // 1 to ~3 KiB payloads: ~2000 frames in 4+ MiB, headers at every offset modulo the window.
    for (let i = 0, bytes = 0; bytes < 4.2 * 1024 * 1024; i++) {
      const payload = randomBytes(1 + ((i * 7919) % 3000))
      written.push({ firstSeq: wal.append(payload, 1 + (i % 4)), count: 1 + (i % 4), payload })
      bytes += FRAME_HEADER_BYTES + payload.byteLength
    }
    const nextSeq = wal.nextSeq
    wal.close()
    rmSync(join(dir, 'clean'))
    const again = WriteAheadLog.open(dir)
    expect(again.recovery).toMatchObject({ walked: true, truncatedBytes: 0, corruptRegions: 0 })
    expect(again.nextSeq).toBe(nextSeq)
    expect(readAll(again)).toEqual(written)
    again.close()
  })

  it('acknowledgement records inside do not stop the walk, and the highest one counts', () => {
    const dir = tempDir()
    const wal = WriteAheadLog.open(dir)
    for (let i = 0; i < FRAMES; i++) {
      wal.append(randomBytes(PAYLOAD_BYTES), 3)
      if (i === 40) expect(wal.recordAck(60)).toBe(true) // items 0–59 delivered
      if (i === 50) expect(wal.recordAck(90)).toBe(true)
    }
    wal.close()
    // As a crash right after the records were written: no clean record, the ack file not yet written.
    rmSync(join(dir, 'clean'))
    rmSync(join(dir, 'ack'))
    const again = WriteAheadLog.open(dir)
    expect(again.recovery.walked).toBe(true)
    expect(again.recovery.pendingItems).toBe(FRAMES * 3 - 90)
    expect(readAll(again)[0]?.firstSeq).toBe(90)
    again.close()
  })

  it('large and small frames mixed: after a large frame only a header is read, small ones share a window', () => {
    const dir = tempDir()
    const wal = WriteAheadLog.open(dir)
    const written = []
    const sizes = [
      ...Array<number>(40).fill(PAYLOAD_BYTES),
      ...Array.from({ length: 300 }, (_, i) => 1 + ((i * 37) % 700)),
      ...Array<number>(40).fill(PAYLOAD_BYTES),
      ...Array.from({ length: 50 }, (_, i) => 16 * 1024 - 40 + i),
    ]
    for (const size of sizes) {
      const payload = randomBytes(size)
      written.push({ firstSeq: wal.append(payload, 1), count: 1, payload })
    }
    wal.close()
    rmSync(join(dir, 'clean'))
    const again = WriteAheadLog.open(dir)
    expect(again.recovery).toMatchObject({ walked: true, truncatedBytes: 0, corruptRegions: 0 })
    expect(again.recovery.pendingItems).toBe(sizes.length)
    expect(readAll(again)).toEqual(written)
    again.close()
  })

  it('a smaller last segment is scanned as before', () => {
    const dir = tempDir()
    const wal = WriteAheadLog.open(dir)
    wal.append(randomBytes(1000), 1)
    wal.close()
    rmSync(join(dir, 'clean'))
    const again = WriteAheadLog.open(dir)
    expect(again.recovery).toMatchObject({ walked: false, frames: 1 })
    again.close()
  })
})

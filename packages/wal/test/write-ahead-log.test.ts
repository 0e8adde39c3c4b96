import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { nodeFs, WalError, type WalFs, WriteAheadLog } from '@vinequeue/wal'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { tempDirs } from './temp-dirs.ts'

const tempDir = tempDirs('vq-wal-')

/** A deterministic payload for frame i (its bytes tell which frame it is). */
function payload(i: number, size = 40 + (i % 7) * 13): Uint8Array {
  const p = new Uint8Array(size)
  for (let k = 0; k < size; k++) p[k] = (i * 31 + k) & 0xff
  return p
}

function readAll(
  wal: WriteAheadLog,
  from?: number,
): Array<{ firstSeq: number; count: number; payload: number[] }> {
  return [...wal.frames(from)].map((f) => ({ firstSeq: f.firstSeq, count: f.count, payload: [...f.payload] }))
}

function segmentFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.wal'))
    .sort()
}

describe('WriteAheadLog', () => {
  it('appends, syncs and reads back across segment rotations and a reopen', () => {
    const dir = tempDir()
    const wal = WriteAheadLog.open(dir, { segmentBytes: 4096 })
    const written: Array<{ firstSeq: number; count: number; payload: number[] }> = []
    for (let i = 0; i < 200; i++) {
      const p = payload(i)
      const firstSeq = wal.append(p, 1 + (i % 5))
      written.push({ firstSeq, count: 1 + (i % 5), payload: [...p] })
    }
    expect(wal.sync()).toBe(wal.nextSeq)
    expect(segmentFiles(dir).length).toBeGreaterThan(3)
    expect(readAll(wal)).toEqual(written)
    wal.close()
    const again = WriteAheadLog.open(dir, { segmentBytes: 4096 })
    expect(again.recovery).toMatchObject({ corruptRegions: 0, truncatedBytes: 0, pendingItems: 600 })
    expect(readAll(again)).toEqual(written)
    expect(again.nextSeq).toBe(600)
    again.close()
  })

  it('ack moves a durable watermark, deletes delivered segments, and a reopen re-delivers exactly the rest', () => {
    const dir = tempDir()
    const wal = WriteAheadLog.open(dir, { segmentBytes: 4096 })
    for (let i = 0; i < 100; i++) wal.append(payload(i), 10)
    wal.sync()
    const before = segmentFiles(dir).length
    wal.ack(505) // mid-frame: frame 50 (items 500–509) stays pending
    expect(segmentFiles(dir).length).toBeLessThan(before)
    expect(wal.pendingItems).toBe(495)
    wal.close()
    const again = WriteAheadLog.open(dir, { segmentBytes: 4096 })
    expect(again.ackedSeq).toBe(505)
    const frames = readAll(again)
    expect(frames[0]!.firstSeq).toBe(500)
    expect(frames.map((f) => f.firstSeq)).toEqual(Array.from({ length: 50 }, (_, k) => 500 + k * 10))
    again.close()
  })

  it('creates the directory 0700 and files 0600', () => {
    const dir = tempDir()
    const wal = WriteAheadLog.open(dir)
    wal.append(payload(1), 1)
    wal.ack(1)
    wal.append(payload(2), 1)
    wal.close()
    expect(statSync(dir).mode & 0o777).toBe(0o700)
    for (const name of readdirSync(dir)) expect(statSync(join(dir, name)).mode & 0o777).toBe(0o600)
  })

  it('rejects bad input with WalError', () => {
    const wal = WriteAheadLog.open(tempDir())
    expect(() => wal.append(payload(1), 0)).toThrow(WalError)
    wal.close()
    expect(() => wal.append(payload(1), 1)).toThrow(/closed/)
    expect(() => WriteAheadLog.open(tempDir(), { segmentBytes: 10 })).toThrow(WalError)
  })
})

describe('damaged WAL files never crash recovery nor yield corrupted items', () => {
  function writeLog(
    dir: string,
    frames: number,
  ): Array<{ firstSeq: number; count: number; payload: number[] }> {
    const wal = WriteAheadLog.open(dir)
    const out = []
    for (let i = 0; i < frames; i++) {
      const p = payload(i)
      out.push({ firstSeq: wal.append(p, 2), count: 2, payload: [...p] })
    }
    wal.close()
    return out
  }

  it('truncation at every byte offset keeps exactly the whole frames before the cut, then appends after them', () => {
    const base = tempDir()
    const written = writeLog(base, 6)
    const [segment] = segmentFiles(base)
    const bytes = readFileSync(join(base, segment!))
    for (let cut = 0; cut <= bytes.byteLength; cut++) {
      const dir = tempDir()
      WriteAheadLog.open(dir).close()
      writeFileSync(join(dir, segment!), bytes.subarray(0, cut), { mode: 0o600 })
      const wal = WriteAheadLog.open(dir)
      const got = readAll(wal)
      // A prefix of what was written, every frame intact.
      expect(got).toEqual(written.slice(0, got.length))
      const ends = [0]
      for (const f of written) ends.push(ends.at(-1)! + 32 + f.payload.length)
      expect(got.length).toBe(ends.filter((e) => e > 0 && e <= cut).length)
      expect(wal.recovery.truncatedBytes).toBe(cut - ends[got.length]!)
      // Appending continues after the last whole frame, and survives a reopen.
      const seq = wal.append(payload(99), 1)
      expect(seq).toBe(got.length * 2)
      wal.close()
      const again = WriteAheadLog.open(dir)
      expect(readAll(again)).toEqual([...got, { firstSeq: seq, count: 1, payload: [...payload(99)] }])
      again.close()
    }
  })

  it('random bit flips: only intact frames come back, damage is counted', () => {
    const base = tempDir()
    const written = writeLog(base, 12)
    const [segment] = segmentFiles(base)
    const bytes = readFileSync(join(base, segment!))
    const known = new Set(written.map((f) => JSON.stringify(f)))
    fc.assert(
      fc.property(fc.array(fc.nat(bytes.byteLength * 8 - 1), { minLength: 1, maxLength: 8 }), (bits) => {
        const dir = tempDir()
        WriteAheadLog.open(dir).close()
        const damaged = Buffer.from(bytes)
        for (const bit of bits) damaged[bit >> 3]! ^= 1 << (bit & 7)
        writeFileSync(join(dir, segment!), damaged, { mode: 0o600 })
        const wal = WriteAheadLog.open(dir)
        const got = readAll(wal)
        for (const f of got) expect(known.has(JSON.stringify(f))).toBe(true)
        const lost = written.length - got.length
        if (lost > 0)
          expect(wal.recovery.corruptRegions + (wal.recovery.truncatedBytes > 0 ? 1 : 0)).toBeGreaterThan(0)
        wal.close()
      }),
      { numRuns: 150, seed: 20261126 },
    )
  })

  it('a zeroed region mid-file loses only the frames it covers', () => {
    const base = tempDir()
    const written = writeLog(base, 10)
    const [segment] = segmentFiles(base)
    const bytes = Buffer.from(readFileSync(join(base, segment!)))
    const frameStart = (n: number): number =>
      written.slice(0, n).reduce((s, f) => s + 32 + f.payload.length, 0)
    bytes.fill(0, frameStart(3) + 5, frameStart(5) + 10) // frames 3, 4 and 5 hit
    const dir = tempDir()
    WriteAheadLog.open(dir).close()
    writeFileSync(join(dir, segment!), bytes, { mode: 0o600 })
    const wal = WriteAheadLog.open(dir)
    expect(readAll(wal)).toEqual([...written.slice(0, 3), ...written.slice(6)])
    expect(wal.recovery.corruptRegions).toBe(1)
    expect(wal.recovery.truncatedBytes).toBe(0)
    wal.close()
  })

  it('a watermark ahead of the data or damaged: nothing invented, nothing skipped', () => {
    const dir = tempDir()
    const wal = WriteAheadLog.open(dir)
    for (let i = 0; i < 5; i++) wal.append(payload(i), 1)
    wal.ack(3)
    wal.close()
    // Damaged watermark: everything is re-delivered (at-least-once).
    writeFileSync(join(dir, 'ack'), Buffer.from('garbage-garbage!'))
    const reset = WriteAheadLog.open(dir)
    expect(reset.recovery.watermarkReset).toBe(true)
    expect(readAll(reset).map((f) => f.firstSeq)).toEqual([0, 1, 2, 3, 4])
    // Ahead of the data (frames lost): new items continue after the watermark.
    reset.ack(50)
    reset.close()
    const ahead = WriteAheadLog.open(dir)
    expect(readAll(ahead)).toEqual([])
    expect(ahead.append(payload(9), 1)).toBe(50)
    ahead.close()
  })
})

describe('file-system faults', () => {
  it('ENOSPC during append and fsync: a clear WalError, the log as before, writing resumes when space returns', () => {
    let full = false
    const fs: WalFs = {
      ...nodeFs,
      writeSync: (fd, buf, off, len, pos) => {
        if (full) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })
        return nodeFs.writeSync(fd, buf, off, len, pos)
      },
      fdatasyncSync: (fd) => {
        if (full) throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' })
        nodeFs.fdatasyncSync(fd)
      },
    }
    const dir = tempDir()
    const wal = WriteAheadLog.open(dir, { fs })
    wal.append(payload(0), 1)
    wal.sync()
    full = true
    const err = (() => {
      try {
        wal.append(payload(1), 1)
      } catch (e) {
        return e as WalError
      }
    })()
    expect(err).toBeInstanceOf(WalError)
    expect(err!.code).toBe('VQ_WAL_IO')
    expect((err!.cause as NodeJS.ErrnoException).code).toBe('ENOSPC')
    expect(wal.nextSeq).toBe(1)
    full = false
    wal.append(payload(2), 1)
    full = true
    expect(() => wal.sync()).toThrow(/fdatasync failed/)
    expect(wal.syncedSeq).toBe(1)
    full = false
    expect(wal.sync()).toBe(2)
    wal.close()
    const again = WriteAheadLog.open(dir)
    expect(readAll(again).map((f) => f.payload)).toEqual([[...payload(0)], [...payload(2)]])
    again.close()
  })
})

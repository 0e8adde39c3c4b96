import { readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { nodeFs, WalError, type WalFs, WriteAheadLog } from '@vinequeue/wal'
import { describe, expect, it } from 'vitest'
import { tempDirs } from './temp-dirs.ts'

// A log on a device that fills up: the watermark must still be written (in
// place, no new block), delivered segments deleted and space given back —
// before, `ack.tmp` failed with ENOSPC, nothing was deleted again, and the
// log stayed full for good.

const tempDir = tempDirs('vq-wal-full-')

const BLOCK = 4096
const blocks = (bytes: number): number => Math.ceil(bytes / BLOCK)

/**
 * node:fs over a device of `budget` bytes (4 KiB blocks) holding the log's
 * directory: a write that needs blocks past it fails with ENOSPC (nothing
 * written); unlinking or truncating a file gives its blocks back. Writes
 * inside a file's allocated blocks need none.
 */
function deviceFs(dir: string, budget: number): WalFs {
  const used = (): number => {
    let n = 0
    const walk = (d: string): void => {
      for (const name of readdirSync(d)) {
        const st = statSync(join(d, name))
        if (st.isDirectory()) walk(join(d, name))
        else n += blocks(st.size) * BLOCK
      }
    }
    walk(dir)
    return n
  }
  return {
    ...nodeFs,
    writeSync(fd, buffer, offset, length, position) {
      const size = nodeFs.fstatSizeSync(fd)
      const end = (position ?? size) + length
      const more = (blocks(end) - blocks(size)) * BLOCK
      if (more > 0 && used() + more > budget) {
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })
      }
      return nodeFs.writeSync(fd, buffer, offset, length, position)
    },
  }
}

const frame = (i: number): Uint8Array => new Uint8Array(1000).fill(i & 0xff)

/** Appends until the device is full; returns how many frames went in. */
function fill(wal: WriteAheadLog): number {
  let n = 0
  for (;;) {
    try {
      wal.append(frame(n), 1)
      n++
    } catch (err) {
      expect(err).toBeInstanceOf(WalError)
      expect((err as WalError).code).toBe('VQ_WAL_IO')
      expect(((err as WalError).cause as NodeJS.ErrnoException).code).toBe('ENOSPC')
      return n
    }
  }
}

const segmentCount = (dir: string): number => readdirSync(dir).filter((n) => n.endsWith('.wal')).length

describe('a WAL whose device fills up', () => {
  it('acknowledging still works (the watermark is written in place), delivered segments go, space returns, appends resume, and a reopen does not re-deliver them', () => {
    const dir = tempDir()
    const fs = deviceFs(join(dir, '..'), 160 * 1024)
    const wal = WriteAheadLog.open(dir, { fs, segmentBytes: 8192 })
    const written = fill(wal)
    expect(written).toBeGreaterThan(40)
    wal.sync()
    const before = segmentCount(dir)
    wal.ack(wal.nextSeq) // every item delivered: before, ENOSPC on ack.tmp
    expect(wal.ackedSeq).toBe(written)
    expect(segmentCount(dir)).toBeLessThan(before)
    // Space came back: the log takes frames again, without a restart.
    const more = fill(wal)
    expect(more).toBeGreaterThan(30)
    wal.sync()
    wal.close()
    const again = WriteAheadLog.open(dir)
    expect(again.ackedSeq).toBe(written)
    expect(again.pendingItems).toBe(more)
    again.close()
  })

  it('a full segment holding only delivered items is closed on ENOSPC so it can go, and the next append starts a new one', () => {
    const dir = tempDir()
    const fs = deviceFs(join(dir, '..'), 48 * 1024)
    // One segment larger than the device: the one being written never rotates.
    const wal = WriteAheadLog.open(dir, { fs, segmentBytes: 1024 * 1024 })
    const written = fill(wal)
    wal.sync()
    wal.ack(wal.nextSeq)
    expect(segmentCount(dir)).toBe(1) // the segment being written is kept while it is written to
    // The first append after that finds the device full, and lets the delivered segment go.
    expect(() => wal.append(frame(0), 1)).toThrow(WalError)
    expect(segmentCount(dir)).toBe(0)
    expect(wal.append(frame(1), 1)).toBe(written)
    wal.sync()
    wal.close()
    const again = WriteAheadLog.open(dir)
    expect(again.pendingItems).toBe(1)
    expect([...again.frames()].map((f) => f.firstSeq)).toEqual([written])
    again.close()
  })

  it('opens on a full device (the lock file takes the reserve), and the reserve comes back once space does', () => {
    const dir = tempDir()
    const fs = deviceFs(join(dir, '..'), 160 * 1024)
    let wal = WriteAheadLog.open(dir, { fs, segmentBytes: 8192 })
    expect(readdirSync(dir)).toContain('reserve')
    const written = fill(wal)
    wal.close() // a stop while the device is full…
    writeFileSync(join(dir, '..', 'other'), new Uint8Array(4096)) // …and the block its lock gave back taken
    wal = WriteAheadLog.open(dir, { fs, segmentBytes: 8192 }) // before: ENOSPC creating the lock
    expect(readdirSync(dir)).not.toContain('reserve')
    expect(wal.pendingItems).toBe(written)
    wal.ack(wal.nextSeq)
    expect(readdirSync(dir)).toContain('reserve')
    wal.close()
  })
})

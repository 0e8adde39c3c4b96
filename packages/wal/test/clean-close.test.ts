import { readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { WriteAheadLog } from '@vinequeue/wal'
import { describe, expect, it } from 'vitest'
import { segmentNames, tempDirs } from './temp-dirs.ts'

const tempDir = tempDirs('vq-wal-clean-')
const segmentFiles = segmentNames
const payload = (i: number): Uint8Array => new Uint8Array(50 + (i % 9)).fill(i & 0xff)
const readAll = (wal: WriteAheadLog) =>
  [...wal.frames()].map((f) => ({ firstSeq: f.firstSeq, count: f.count, payload: [...f.payload] }))

/** A log of `n` frames of 2 items each, closed cleanly; what was written. */
function writeAndClose(dir: string, n: number, from = 0) {
  const wal = WriteAheadLog.open(dir)
  const written = []
  for (let i = from; i < from + n; i++) {
    const p = payload(i)
    written.push({ firstSeq: wal.append(p, 2), count: 2, payload: [...p] })
  }
  wal.close()
  return written
}

describe('clean close: the last segment is not scanned at the next open', () => {
  it('reopens without scanning, appends to a new segment, and reads everything back in order across several clean restarts', () => {
    const dir = tempDir()
    const first = writeAndClose(dir, 20)
    expect(statSync(join(dir, 'clean')).mode & 0o777).toBe(0o600)
    const a = WriteAheadLog.open(dir)
    expect(a.recovery).toMatchObject({ cleanClose: true, frames: 0, pendingItems: 40, truncatedBytes: 0 })
    expect(a.nextSeq).toBe(40)
    const more = []
    for (let i = 20; i < 25; i++)
      more.push({ firstSeq: a.append(payload(i), 2), count: 2, payload: [...payload(i)] })
    expect(segmentFiles(dir)).toHaveLength(2) // the cleanly closed segment is never written again
    expect(readAll(a)).toEqual([...first, ...more])
    a.close()
    const b = WriteAheadLog.open(dir)
    expect(b.recovery.cleanClose).toBe(true)
    expect(readAll(b)).toEqual([...first, ...more])
    expect(b.corruptRegions).toBe(0)
    b.close()
  })

  it('a crash after the clean reopen (appends, no close): the new last segment is scanned, nothing lost', () => {
    const dir = tempDir()
    const first = writeAndClose(dir, 10)
    const a = WriteAheadLog.open(dir)
    const more = [{ firstSeq: a.append(payload(10), 2), count: 2, payload: [...payload(10)] }]
    a.sync()
    // No close: as after SIGKILL (the `clean` record still names the first
    // segment, and the lock is left to a process that is gone).
    writeFileSync(join(dir, 'lock'), JSON.stringify({ pid: 2 ** 22 + 1 }))
    const b = WriteAheadLog.open(dir)
    expect(b.recovery).toMatchObject({ cleanClose: false, frames: 1 })
    expect(readAll(b)).toEqual([...first, ...more])
    b.close()
  })

  it('a last segment whose size no longer matches the record is scanned (and a torn tail cut)', () => {
    const dir = tempDir()
    const written = writeAndClose(dir, 10)
    const [segment] = segmentFiles(dir)
    const path = join(dir, segment!)
    truncateSync(path, statSync(path).size - 7)
    const wal = WriteAheadLog.open(dir)
    expect(wal.recovery).toMatchObject({ cleanClose: false, frames: 9 })
    expect(wal.recovery.truncatedBytes).toBeGreaterThan(0)
    expect(readAll(wal)).toEqual(written.slice(0, 9))
    wal.close()
  })

  it('a damaged or foreign record is ignored: the last segment is scanned', () => {
    const dir = tempDir()
    const written = writeAndClose(dir, 5)
    const record = readFileSync(join(dir, 'clean'))
    record[10]! ^= 0x01
    writeFileSync(join(dir, 'clean'), record)
    const wal = WriteAheadLog.open(dir)
    expect(wal.recovery).toMatchObject({ cleanClose: false, frames: 5 })
    expect(readAll(wal)).toEqual(written)
    wal.close()
  })

  it('damage inside the unscanned segment (same size) is found by the reader: skipped and counted, the rest delivered', () => {
    const dir = tempDir()
    const written = writeAndClose(dir, 10)
    const [segment] = segmentFiles(dir)
    const bytes = readFileSync(join(dir, segment!))
    bytes[32 + 60 + 32 + 10]! ^= 0xff // in the second frame's payload
    writeFileSync(join(dir, segment!), bytes)
    const wal = WriteAheadLog.open(dir)
    expect(wal.recovery.cleanClose).toBe(true)
    expect(readAll(wal)).toEqual([written[0], ...written.slice(2)])
    expect(wal.corruptRegions).toBe(1)
    wal.close()
  })

  it('nothing to record for an empty log; a fully acknowledged cleanly closed segment is deleted at the next open', () => {
    const dir = tempDir()
    WriteAheadLog.open(dir).close()
    expect(readdirSync(dir)).not.toContain('clean')
    writeAndClose(dir, 4)
    const a = WriteAheadLog.open(dir)
    a.ack(a.nextSeq)
    a.close()
    const b = WriteAheadLog.open(dir)
    expect(segmentFiles(dir)).toEqual([])
    expect(readAll(b)).toEqual([])
    expect(b.append(payload(1), 1)).toBe(8)
    b.close()
  })
})

import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { WriteAheadLog } from '@vinequeue/wal'
import { describe, expect, it } from 'vitest'
import { tempDirs } from './temp-dirs.ts'

const tempDir = tempDirs('vq-walr-')
function payload(i: number): Uint8Array {
  return new Uint8Array(500).fill(i & 0xff)
}
function segments(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.wal'))
    .sort()
}

/** 40 frames of 10 items in 4 KiB segments: several segments. */
function writeLog(dir: string): void {
  const wal = WriteAheadLog.open(dir, { segmentBytes: 4096 })
  for (let i = 0; i < 40; i++) wal.append(payload(i), 10)
  wal.close()
}

describe('lazy recovery and the reader', () => {
  it('open scans only the last segment; a reader checks older ones when it reaches them', () => {
    const dir = tempDir()
    writeLog(dir)
    const names = segments(dir)
    expect(names.length).toBeGreaterThan(4)
    // Damage a frame in the middle of the second segment.
    const victim = join(dir, names[1]!)
    const bytes = readFileSync(victim)
    bytes[600] = bytes[600]! ^ 0xff
    writeFileSync(victim, bytes)

    const wal = WriteAheadLog.open(dir, { segmentBytes: 4096 })
    expect(wal.recovery.corruptRegions).toBe(0) // not read yet
    expect(wal.recovery.pendingItems).toBe(400)
    const frames = [...wal.frames()]
    expect(wal.corruptRegions).toBe(1) // found by the reader
    expect(frames).toHaveLength(39)
    for (const f of frames) expect(f.payload[0]).toBe((f.firstSeq / 10) & 0xff)
    wal.close()
  })

  it('a reader follows appends, stops at a limit, and skips forward', () => {
    const wal = WriteAheadLog.open(tempDir(), { segmentBytes: 4096 })
    const reader = wal.reader()
    expect(reader.next()).toBeUndefined()
    for (let i = 0; i < 3; i++) wal.append(payload(i), 10)
    expect(reader.behind).toBe(true)
    expect(reader.next(15)?.firstSeq).toBe(0) // frame [0, 10) is below 15
    expect(reader.next(15)).toBeUndefined() // [10, 20) is not
    expect(reader.next()?.firstSeq).toBe(10)
    for (let i = 3; i < 20; i++) wal.append(payload(i), 10) // across segment rotations
    expect(reader.skipTo(100)).toBe(80)
    expect(reader.next()?.firstSeq).toBe(100)
    reader.catchUp()
    expect(reader.behind).toBe(false)
    expect(reader.position).toBe(200)
    wal.append(payload(20), 10)
    expect(reader.next()?.firstSeq).toBe(200)
    reader.close()
    wal.close()
  })

  it('sealing lets the last segment go once acknowledged; oldestSegmentEnd follows', () => {
    const dir = tempDir()
    const wal = WriteAheadLog.open(dir, { segmentBytes: 1 << 20 })
    for (let i = 0; i < 5; i++) wal.append(payload(i), 10)
    expect(wal.oldestSegmentEnd).toBe(50)
    wal.ack(50)
    expect(segments(dir)).toHaveLength(1) // being written: kept
    wal.seal()
    wal.ack(50) // (no move: already there)
    wal.append(payload(5), 10) // starts a new segment
    wal.ack(60)
    expect(segments(dir)).toHaveLength(1)
    expect(wal.sizeBytes).toBeGreaterThan(0)
    wal.close()
    const again = WriteAheadLog.open(dir)
    expect(again.nextSeq).toBe(60)
    expect(again.pendingItems).toBe(0)
    again.close()
  })
})

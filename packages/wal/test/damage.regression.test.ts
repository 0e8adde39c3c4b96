import { randomBytes } from 'node:crypto'
import { copyFileSync, existsSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { scanSegment, type WalDamage, WriteAheadLog } from '@vinequeue/wal'
import { describe, expect, it } from 'vitest'
import { segmentNames, tempDirs } from './temp-dirs.ts'

// What the log cannot read is damage: counted, reported (onDamage), and its
// bytes kept in quarantine/ before the segment holding them can be deleted —
// never skipped and deleted unseen. A gap in sequence numbers (a missing
// segment) is damage too, and a stray file never leaves a reader behind.

const tempDir = tempDirs('vq-wal-damage-')
const payload = (i: number): Uint8Array => new Uint8Array(900).fill(i & 0xff)
const segments = segmentNames
const quarantine = (dir: string): string[] =>
  existsSync(join(dir, 'quarantine')) ? readdirSync(join(dir, 'quarantine')).sort() : []
const name = (seq: number): string => `${String(seq).padStart(20, '0')}.wal`

/** A log of `frames` frames of 10 items each, 4 frames per segment; closed. */
function makeLog(dir: string, frames = 12): void {
  const wal = WriteAheadLog.open(dir, { segmentBytes: 4096 })
  for (let i = 0; i < frames; i++) wal.append(payload(i), 10)
  wal.close()
}

function open(dir: string): { wal: WriteAheadLog; damage: WalDamage[] } {
  const damage: WalDamage[] = []
  const wal = WriteAheadLog.open(dir, { segmentBytes: 4096, onDamage: (d) => damage.push(d) })
  return { wal, damage }
}

const firstSeqs = (wal: WriteAheadLog): number[] => [...wal.frames()].map((f) => f.firstSeq)

describe('a gap in sequence numbers is damage', () => {
  it('a missing middle segment: the gap is reported and counted, the rest read, and the reader is not left behind', () => {
    const dir = tempDir()
    makeLog(dir)
    expect(segments(dir)).toEqual([name(0), name(40), name(80)])
    unlinkSync(join(dir, name(40)))
    const { wal, damage } = open(dir)
    const reader = wal.reader()
    const seen: number[] = []
    for (let f = reader.next(); f; f = reader.next()) seen.push(f.firstSeq)
    expect(seen).toEqual([0, 10, 20, 30, 80, 90, 100, 110])
    expect(reader.behind).toBe(false)
    expect(damage).toEqual([
      expect.objectContaining({ kind: 'gap', fromSeq: 40, toSeq: 80, segment: name(80) }),
    ])
    expect(damage[0]!.message).toContain('40–79 (40 items) are in no frame')
    expect(wal.gaps).toBe(1)
    expect(wal.gapItems).toBe(40)
    // Read again (another reader): reported once.
    expect(firstSeqs(wal)).toEqual(seen)
    expect(wal.gaps).toBe(1)
    reader.close()
    wal.close()
  })

  it('a missing first segment above the watermark is a gap; segments deleted below it are not', () => {
    const dir = tempDir()
    makeLog(dir)
    const acked = WriteAheadLog.open(dir, { segmentBytes: 4096 })
    acked.ack(45) // the first segment (0-39) is delivered and deleted
    acked.close()
    expect(segments(dir)).toEqual([name(40), name(80)])
    let { wal, damage } = open(dir)
    expect(firstSeqs(wal)).toEqual([40, 50, 60, 70, 80, 90, 100, 110])
    expect(damage).toEqual([])
    wal.close()
    unlinkSync(join(dir, name(40)))
    ;({ wal, damage } = open(dir))
    expect(firstSeqs(wal)).toEqual([80, 90, 100, 110])
    expect(damage).toEqual([expect.objectContaining({ kind: 'gap', fromSeq: 45, toSeq: 80 })])
    wal.close()
  })
})

describe('a stray segment file after the last one', () => {
  it('empty, named past the data: the reader finishes (a gap at the end, reported), pending items settle, new items follow it', () => {
    const dir = tempDir()
    makeLog(dir)
    writeFileSync(join(dir, name(5000)), '')
    const { wal, damage } = open(dir)
    expect(wal.nextSeq).toBe(5000)
    const reader = wal.reader()
    let n = 0
    for (let f = reader.next(); f; f = reader.next()) n += f.count
    expect(n).toBe(120)
    expect(reader.behind).toBe(false) // before: behind forever (recovering never ended)
    expect(reader.position).toBe(5000)
    expect(damage).toEqual([expect.objectContaining({ kind: 'gap', fromSeq: 120, toSeq: 5000 })])
    wal.ack(reader.position)
    expect(wal.pendingItems).toBe(0)
    expect(wal.append(payload(1), 1)).toBe(5000)
    reader.close()
    wal.close()
  })

  it('full of garbage: its bytes are copied to quarantine before the cut, never truncated away unseen', () => {
    const dir = tempDir()
    makeLog(dir)
    const garbage = randomBytes(3000)
    writeFileSync(join(dir, name(900)), garbage)
    const { wal, damage } = open(dir)
    const copy = `${name(900)}@0-3000.corrupt`
    expect(quarantine(dir)).toEqual([copy])
    expect(readFileSync(join(dir, 'quarantine', copy))).toEqual(garbage)
    expect(damage[0]).toMatchObject({
      kind: 'corrupt',
      segment: name(900),
      quarantined: join(dir, 'quarantine', copy),
    })
    expect(wal.quarantined).toBe(1)
    expect(firstSeqs(wal)).toHaveLength(12)
    expect(damage.at(-1)).toMatchObject({ kind: 'gap', fromSeq: 120, toSeq: 900 })
    wal.close()
  })

  it('named past 2^53: moved whole into quarantine, and the log opens as it was', () => {
    const dir = tempDir()
    makeLog(dir)
    writeFileSync(join(dir, '99999999999999999999.wal'), 'stray')
    const { wal, damage } = open(dir)
    expect(wal.nextSeq).toBe(120)
    expect(segments(dir)).not.toContain('99999999999999999999.wal')
    expect(readFileSync(join(dir, 'quarantine', '99999999999999999999.wal'), 'utf8')).toBe('stray')
    expect(damage).toEqual([expect.objectContaining({ kind: 'stray', segment: '99999999999999999999.wal' })])
    expect(firstSeqs(wal)).toHaveLength(12)
    wal.close()
  })

  it('a copy of an older segment under a later name: its frames are misplaced (quarantined, not read twice)', () => {
    const dir = tempDir()
    makeLog(dir)
    copyFileSync(join(dir, name(0)), join(dir, name(120)))
    const { wal, damage } = open(dir)
    expect(firstSeqs(wal)).toEqual([0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110])
    expect(damage.filter((d) => d.kind === 'misplaced').map((d) => d.fromSeq)).toEqual([0, 10, 20, 30])
    expect(quarantine(dir)).toHaveLength(4)
    wal.close()
  })
})

describe('damaged bytes are kept in quarantine, not deleted with their segment', () => {
  it('a CRC-damaged frame in an older segment: copied before the watermark passes it and the segment is deleted', () => {
    const dir = tempDir()
    makeLog(dir)
    const path = join(dir, name(0))
    const bytes = Buffer.from(readFileSync(path))
    const victim = scanSegment(bytes).frames[1]!
    bytes[victim.offset + 100]! ^= 0xff
    writeFileSync(path, bytes)
    const damagedRegion = bytes.subarray(victim.offset, victim.end)
    const { wal, damage } = open(dir)
    expect(firstSeqs(wal)).toEqual([0, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110])
    const copy = `${name(0)}@${victim.offset}-${victim.end}.corrupt`
    expect(quarantine(dir)).toEqual([copy])
    expect(damage[0]).toMatchObject({ kind: 'corrupt', segment: name(0), start: victim.offset })
    wal.ack(wal.nextSeq)
    expect(existsSync(path)).toBe(false) // delivered, deleted…
    expect(readFileSync(join(dir, 'quarantine', copy))).toEqual(damagedRegion) // …its damage kept
    wal.close()
  })

  it('the last segment: a torn write is cut silently; damage that is not a torn write is copied first', () => {
    const dir = tempDir()
    makeLog(dir, 2)
    const path = join(dir, name(0))
    const whole = readFileSync(path)
    // A crash half-way through a frame: cut, nothing kept (never reported durable).
    writeFileSync(path, whole.subarray(0, whole.byteLength - 300))
    let { wal, damage } = open(dir)
    expect(wal.recovery.truncatedBytes).toBeGreaterThan(0)
    expect(damage).toEqual([])
    expect(quarantine(dir)).toEqual([])
    wal.close()
    // The same frame garbled from its first byte: damage, kept before the cut.
    const bytes = Buffer.from(whole)
    const second = scanSegment(bytes).frames[1]!
    bytes.fill(0x5a, second.offset, second.offset + 8)
    writeFileSync(path, bytes)
    ;({ wal, damage } = open(dir))
    expect(damage).toEqual([expect.objectContaining({ kind: 'corrupt', start: second.offset })])
    expect(readFileSync(join(dir, 'quarantine', quarantine(dir)[0]!))).toEqual(bytes.subarray(second.offset))
    wal.close()
  })

  it('reader.quarantine copies a frame that cannot be decoded, then skips it', () => {
    const dir = tempDir()
    makeLog(dir, 3)
    const { wal, damage } = open(dir)
    const reader = wal.reader()
    expect(reader.next()!.firstSeq).toBe(0)
    expect(reader.peekHeader()!.firstSeq).toBe(10)
    expect(reader.quarantine()).toBe(10)
    expect(reader.next()!.firstSeq).toBe(20)
    expect(damage).toEqual([expect.objectContaining({ kind: 'auth', fromSeq: 10, toSeq: 20 })])
    const [copy] = quarantine(dir)
    const scan = scanSegment(readFileSync(join(dir, 'quarantine', copy!)))
    expect(scan.frames.map((f) => f.header.firstSeq)).toEqual([10])
    reader.close()
    wal.close()
  })
})

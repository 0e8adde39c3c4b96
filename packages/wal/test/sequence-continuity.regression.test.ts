import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { WriteAheadLog } from '@vinequeue/wal'
import { describe, expect, it } from 'vitest'
import { tempDirs } from './temp-dirs.ts'

// Sequence numbers (with the log's id) are what a deduplicating sink keys on:
// a number given twice under one id would make it drop new data as a repeat.

const tempDir = tempDirs('vq-wal-seq-')
const segmentFiles = (dir: string): string[] => readdirSync(dir).filter((n) => n.endsWith('.wal'))
const payload = new Uint8Array(200).fill(7)

/**
 * Opens the log (which deletes a last segment left delivered at the previous
 * close), appends `frames` frames of 3 items, makes them durable,
 * acknowledges all and closes.
 */
function fillAndDrain(dir: string, frames: number): { logId: string; seqs: number[]; opened: WalState } {
  const wal = WriteAheadLog.open(dir, { segmentBytes: 4096 })
  const opened = { nextSeq: wal.nextSeq, segments: segmentFiles(dir) }
  const seqs: number[] = []
  for (let i = 0; i < frames; i++) seqs.push(wal.append(payload, 3))
  wal.sync()
  wal.ack(wal.nextSeq)
  const logId = wal.logId
  wal.close()
  return { logId, seqs, opened }
}
interface WalState {
  nextSeq: number
  segments: string[]
}

/** A log whose every item was delivered, closed and opened once more: no segment file is left. */
function drained(dir: string, frames: number): string {
  const { logId } = fillAndDrain(dir, frames)
  WriteAheadLog.open(dir).close()
  expect(segmentFiles(dir)).toEqual([])
  return logId
}

describe('sequence numbers never repeat for a log directory over its whole life', () => {
  it('after every segment was delivered and deleted, a restart goes on from the watermark, under the same id', () => {
    const dir = tempDir()
    const used = new Set<number>()
    let logId: string | undefined
    for (let run = 0; run < 4; run++) {
      const r = fillAndDrain(dir, 30) // several segments of 4 KiB each run
      // Opening deleted the delivered segment the last run left: nothing to number from but the watermark.
      expect(r.opened).toEqual({ nextSeq: used.size, segments: [] })
      for (const s of r.seqs) {
        expect(used.has(s)).toBe(false)
        used.add(s)
      }
      for (const s of r.seqs) for (let k = 1; k < 3; k++) used.add(s + k) // (3 items a frame)
      expect(r.logId).toMatch(/^[0-9a-f]{32}$/)
      if (logId !== undefined) expect(r.logId).toBe(logId)
      logId = r.logId
    }
    const wal = WriteAheadLog.open(dir)
    expect(segmentFiles(dir)).toEqual([])
    expect(wal.nextSeq).toBe(4 * 30 * 3)
    expect(wal.logId).toBe(logId)
    expect(readFileSync(join(dir, 'id'), 'utf8')).toBe(`${logId}\n`)
    wal.close()
  })

  it('with segments left, a missing watermark keeps the id (numbers go on from the last segment)', () => {
    const dir = tempDir()
    const wal = WriteAheadLog.open(dir, { segmentBytes: 4096 })
    for (let i = 0; i < 30; i++) wal.append(payload, 3)
    wal.sync()
    const { logId, nextSeq } = wal
    wal.close()
    rmSync(join(dir, 'ack'))
    const again = WriteAheadLog.open(dir)
    expect(again.logId).toBe(logId)
    expect(again.nextSeq).toBe(nextSeq)
    again.close()
  })

  for (const damage of ['missing', 'damaged'] as const) {
    it(`no segment left and the watermark ${damage}: numbers may start over, so the log takes a new id`, () => {
      const dir = tempDir()
      const firstId = drained(dir, 10)
      if (damage === 'missing') rmSync(join(dir, 'ack'))
      else writeFileSync(join(dir, 'ack'), new Uint8Array(16).fill(0xee))
      const wal = WriteAheadLog.open(dir)
      expect(wal.nextSeq).toBe(0) // nothing on disk says how far the log had numbered
      expect(wal.logId).toMatch(/^[0-9a-f]{32}$/)
      expect(wal.logId).not.toBe(firstId)
      expect(readFileSync(join(dir, 'id'), 'utf8')).toBe(`${wal.logId}\n`)
      wal.close()
    })
  }

  it('a damaged or missing id file gets a new id; a fresh directory gets one at open', () => {
    const dir = tempDir()
    const a = WriteAheadLog.open(dir)
    expect(existsSync(join(dir, 'id'))).toBe(true)
    const id0 = a.logId
    a.close()
    writeFileSync(join(dir, 'id'), 'not an id\n')
    const b = WriteAheadLog.open(dir)
    expect(b.logId).not.toBe(id0)
    b.close()
    rmSync(join(dir, 'id'))
    const c = WriteAheadLog.open(dir)
    expect(c.logId).not.toBe(b.logId)
    c.close()
    expect(WriteAheadLog.open(dir).logId).toBe(c.logId)
  })
})

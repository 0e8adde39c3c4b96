import { execFile } from 'node:child_process'
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  ACK_RECORD_VERSION,
  BatchRecord,
  checkFrame,
  encodeAckRecord,
  encodeFrame,
  FRAME_HEADER_BYTES,
  scanSegment,
  WriteAheadLog,
} from '@vinequeue/wal'
import { describe, expect, it } from 'vitest'
import { segmentNames, tempDirs } from './temp-dirs.ts'

// Acknowledgement records: `recordAck` writes the acknowledgement into the
// segment being appended to, made durable by the log's own group commit;
// recovery takes the highest acknowledgement of the `ack` file and of the
// records. These tests open a copy of a log that was never closed: what a
// restart after kill -9 finds (the page cache keeps every write).

const bin = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url))
const tempRoot = tempDirs('vq-wal-ackrec-', '')
const segmentFiles = segmentNames

/** The `ack` file's watermark (16 bytes: 'VQWA', u64 LE, CRC32C). */
function ackFile(dir: string): number {
  return Number(readFileSync(join(dir, 'ack')).readBigUInt64LE(4))
}

/** Opens a copy of `dir` as it is on disk now (the log in `dir` stays open, as after kill -9). */
function crashCopy(dir: string, root: string, name = 'copy'): WriteAheadLog {
  const copy = join(root, name)
  cpSync(dir, copy, { recursive: true })
  rmSync(join(copy, 'lock'), { force: true })
  return WriteAheadLog.open(copy)
}

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

describe('acknowledgement records', () => {
  it('are durable with the next sync (no fdatasync of their own), and a restart starts from them', () => {
    const root = tempRoot()
    const dir = join(root, 'wal')
    const wal = WriteAheadLog.open(dir)
    for (let i = 0; i < 10; i++) wal.append(new Uint8Array(64).fill(i), 10)
    wal.sync()
    expect(wal.recordAck(30)).toBe(true)
    // Written (a process crash keeps it), not durable until a sync covers it.
    expect(wal.recordedAckSeq).toBe(30)
    expect(wal.ackedSeq).toBe(0)
    wal.append(new Uint8Array(64), 10)
    wal.sync()
    expect(wal.ackedSeq).toBe(30)
    expect(wal.ackFileSeq).toBe(0) // (the file is not written: segments are only deleted below it)
    // A sync with nothing appended but a record still fdatasyncs it.
    wal.recordAck(50)
    wal.sync()
    expect(wal.ackedSeq).toBe(50)

    const after = crashCopy(dir, root)
    try {
      expect(after.ackedSeq).toBe(50)
      expect([...after.frames()].map((f) => f.firstSeq)).toEqual([50, 60, 70, 80, 90, 100])
      // Opening brought the copy's `ack` file up to the record.
      expect(ackFile(after.dir)).toBe(50)
      expect(after.pendingItems).toBe(60)
    } finally {
      after.close()
      wal.close()
    }
  })

  it('recovery takes the higher of the `ack` file and the records', () => {
    const root = tempRoot()
    const dir = join(root, 'wal')
    const wal = WriteAheadLog.open(dir)
    for (let i = 0; i < 10; i++) wal.append(new Uint8Array(64).fill(i), 10)
    wal.recordAck(40)
    wal.sync()
    const recordAhead = crashCopy(dir, root, 'a')
    expect(recordAhead.ackedSeq).toBe(40)
    recordAhead.close()

    wal.ack(70) // the file ahead of the records
    const fileAhead = crashCopy(dir, root, 'b')
    expect(fileAhead.ackedSeq).toBe(70)
    expect([...fileAhead.frames()][0]!.firstSeq).toBe(70)
    fileAhead.close()
    wal.close()
  })

  it('are not frames: readers, scans and the frame count never see them', () => {
    const root = tempRoot()
    const dir = join(root, 'wal')
    const wal = WriteAheadLog.open(dir)
    wal.append(new Uint8Array(10).fill(1), 3)
    wal.recordAck(2) // (below a frame's end: the watermark may stand anywhere)
    wal.append(new Uint8Array(10).fill(2), 3)
    wal.recordAck(3)
    wal.sync()
    expect([...wal.frames(0)].map((f) => [f.firstSeq, f.count])).toEqual([
      [0, 3],
      [3, 3],
    ])
    const [name] = segmentFiles(dir)
    const scan = scanSegment(readFileSync(join(dir, name!)))
    expect(scan.frames.map((f) => f.header.firstSeq)).toEqual([0, 3])
    expect({ ackedSeq: scan.ackedSeq, ackRecords: scan.ackRecords, damaged: scan.damaged }).toEqual({
      ackedSeq: 3,
      ackRecords: 2,
      damaged: [],
    })
    wal.close()
  })

  it('a new segment starts with the highest acknowledgement, so the last segment holds it', () => {
    const root = tempRoot()
    const dir = join(root, 'wal')
    const wal = WriteAheadLog.open(dir, { segmentBytes: 4096 })
    wal.append(new Uint8Array(1000), 10)
    wal.recordAck(10)
    wal.sync()
    // Rotations follow; no record is written after them.
    for (let i = 0; i < 12; i++) wal.append(new Uint8Array(1000).fill(i), 10)
    wal.sync()
    const files = segmentFiles(dir)
    expect(files.length).toBeGreaterThan(2)
    const last = readFileSync(join(dir, files.at(-1)!))
    expect(checkFrame(last, 0)).toMatchObject({ ok: true, header: { firstSeq: 10, count: 0, length: 0 } })
    const after = crashCopy(dir, root)
    expect(after.ackedSeq).toBe(10)
    after.close()
    wal.close()
  })

  it('a last segment without a valid start (a crash right after it was created) sends recovery to the one before', () => {
    const root = tempRoot()
    const dir = join(root, 'wal')
    const wal = WriteAheadLog.open(dir)
    for (let i = 0; i < 5; i++) wal.append(new Uint8Array(64).fill(i), 10)
    wal.recordAck(30)
    wal.sync()
    wal.close()
    for (const torn of [new Uint8Array(0), encodeAckRecord(50).subarray(0, 20)]) {
      const copy = join(root, `copy-${torn.byteLength}`)
      cpSync(dir, copy, { recursive: true })
      rmSync(join(copy, 'clean'))
      rmSync(join(copy, 'ack')) // (the file would hide what this test looks at)
      writeFileSync(join(copy, '00000000000000000050.wal'), torn)
      const after = WriteAheadLog.open(copy)
      try {
        expect(after.ackedSeq).toBe(30)
        expect(after.recovery.corruptRegions).toBe(0) // (a torn start is a torn tail: cut)
        expect([...after.frames()].map((f) => f.firstSeq)).toEqual([30, 40])
      } finally {
        after.close()
      }
    }
  })

  it('a log written before acknowledgement records (frames and the `ack` file only) recovers as it did', () => {
    const root = tempRoot()
    const dir = join(root, 'wal')
    const wal = WriteAheadLog.open(dir)
    wal.close()
    // Frames as the previous version wrote them, byte for byte (version 1, nothing else), and its watermark.
    const frames = [0, 4, 8].map((seq) =>
      encodeFrame(new Uint8Array(12).fill(seq), { flags: 0, keyId: 0, firstSeq: seq, count: 4 }),
    )
    writeFileSync(join(dir, '00000000000000000000.wal'), Buffer.concat(frames))
    rmSync(join(dir, 'clean'), { force: true })
    const old = WriteAheadLog.open(dir)
    old.ack(4)
    old.close()
    rmSync(join(dir, 'clean'), { force: true }) // (scanned at open, as after a crash)
    const reopened = WriteAheadLog.open(dir)
    try {
      expect(reopened.ackedSeq).toBe(4)
      expect([...reopened.frames()].map((f) => [f.firstSeq, [...f.payload][0]])).toEqual([
        [4, 4],
        [8, 8],
      ])
      expect(reopened.recovery).toMatchObject({ corruptRegions: 0, truncatedBytes: 0 })
    } finally {
      reopened.close()
    }
  })

  it('close() writes the records into the `ack` file (a clean close skips the last segment at open)', () => {
    const root = tempRoot()
    const dir = join(root, 'wal')
    const wal = WriteAheadLog.open(dir)
    for (let i = 0; i < 5; i++) wal.append(new Uint8Array(64).fill(i), 10)
    wal.recordAck(20)
    wal.close()
    expect(ackFile(dir)).toBe(20)
    const reopened = WriteAheadLog.open(dir)
    expect(reopened.recovery.cleanClose).toBe(true)
    expect(reopened.ackedSeq).toBe(20)
    // No segment open for appending until the next append: no record then.
    expect(reopened.appending).toBe(false)
    expect(reopened.recordAck(30)).toBe(false)
    reopened.close()
  })

  it('an ack record is a header only, version 2: a malformed one is not taken for one', () => {
    const record = encodeAckRecord(123)
    expect(record.byteLength).toBe(FRAME_HEADER_BYTES)
    expect(record[4]).toBe(ACK_RECORD_VERSION)
    expect(checkFrame(record, 0)).toMatchObject({ ok: true, header: { firstSeq: 123, count: 0 } })
    // Version 2 with a count or a payload, or version 1 with the ACK flag: not a frame this log wrote.
    const withCount = encodeFrame(new Uint8Array(0), { flags: 4, keyId: 0, firstSeq: 1, count: 1 }, 2)
    const withPayload = encodeFrame(new Uint8Array(8), { flags: 4, keyId: 0, firstSeq: 1, count: 0 }, 2)
    const v1WithFlag = encodeFrame(new Uint8Array(0), { flags: 4, keyId: 0, firstSeq: 1, count: 0 }, 1)
    for (const bytes of [withCount, withPayload, v1WithFlag])
      expect(checkFrame(bytes, 0)).toEqual({ ok: false, reason: 'bad-version' })
  })

  it('vinequeue-wal reads a log with records: verify OK, inspect names the record, dump starts from it', async () => {
    const root = tempRoot()
    const dir = join(root, 'wal')
    const wal = WriteAheadLog.open(dir)
    // One raw item per frame (a core batch of one enqueueRaw record: u32 length | RAW, 4 bytes).
    const rawItem = (i: number): Uint8Array => {
      const b = Buffer.alloc(8)
      b.writeUInt32LE(4 | BatchRecord.RAW_FLAG, 0)
      b.fill(i, 4)
      return b
    }
    for (let i = 0; i < 6; i++) wal.append(rawItem(i), 1)
    wal.recordAck(4)
    wal.sync()
    const verify = await run(['verify', dir])
    expect(verify).toMatchObject({ code: 0 })
    expect(verify.stdout).toMatch(/^OK 1 segment\(s\), 6 frame\(s\)/)
    const inspect = await run(['inspect', dir])
    expect(inspect.code).toBe(0)
    expect(inspect.stdout).toContain(
      'watermark  4 (ack file 0; acknowledgement record 4 in the last segment)',
    )
    expect(inspect.stdout).toContain('pending    2 items')
    const dump = await run(['dump', dir])
    expect(dump.code).toBe(0)
    expect(
      dump.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).seq),
    ).toEqual([4, 5])
    const all = await run(['dump', '--all', dir])
    expect(all.stdout.trim().split('\n')).toHaveLength(6)
    wal.close()
  })
})

import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { nodeFs, WalError, type WalFs, WriteAheadLog } from '@vinequeue/wal'
import { describe, expect, it } from 'vitest'
import { segmentNames, tempDirs } from './temp-dirs.ts'

// Rotation and acknowledgement keep their fdatasync/fsync off the owner
// thread: what a sync claims (syncedSeq) must still cover every frame, in
// every segment, and the directory entries of new segments.

const tempDir = tempDirs('vq-wal-bg-')
const payload = (i: number): Uint8Array => new Uint8Array(1500).fill(i & 0xff)
const segments = segmentNames

/** node:fs, recording every sync (what it synced, on which thread form) and failing on demand. */
function recordingFs() {
  const paths = new Map<number, string>()
  const log: string[] = []
  let failSync = false
  const name = (fd: number): string => {
    const p = paths.get(fd) ?? '?'
    return p.endsWith('.wal') ? p.slice(-8, -4) : p.split('/').pop()!
  }
  const fail = () => Object.assign(new Error('EIO: i/o error'), { code: 'EIO' })
  const fs: WalFs = {
    ...nodeFs,
    openSync: (path, flags, mode) => {
      const fd = nodeFs.openSync(path, flags, mode)
      paths.set(fd, path)
      if (flags === 'wx+') log.push(`create ${path.split('/').pop()}`)
      return fd
    },
    open: (path, flags, mode, cb) => {
      nodeFs.open!(path, flags, mode, (err, fd) => {
        if (!err) paths.set(fd, path)
        cb(err, fd)
      })
    },
    renameSync: (from, to) => {
      nodeFs.renameSync(from, to)
      log.push(`renameSync ${from.split('/').pop()} ${to.split('/').pop()}`)
      for (const [fd, p] of paths) if (p === from) paths.set(fd, to)
    },
    fdatasyncSync: (fd) => {
      log.push(`fdatasyncSync ${name(fd)}`)
      if (failSync) throw fail()
      nodeFs.fdatasyncSync(fd)
    },
    fdatasync: (fd, cb) => {
      log.push(`fdatasync ${name(fd)}`)
      if (failSync) return queueMicrotask(() => cb(fail()))
      nodeFs.fdatasync!(fd, cb)
    },
    fsyncSync: (fd) => {
      log.push(`fsyncSync ${name(fd)}`)
      nodeFs.fsyncSync(fd)
    },
    fsync: (fd, cb) => {
      log.push(`fsync ${name(fd)}`)
      nodeFs.fsync!(fd, cb)
    },
  }
  return {
    fs,
    log,
    setFail(on: boolean) {
      failSync = on
    },
  }
}

describe('background syncs', () => {
  it('a rotation syncs nothing itself; the next syncAsync syncs the old segment, the directory, then the new one, and only then claims them', async () => {
    const dir = tempDir()
    const { fs, log } = recordingFs()
    const wal = WriteAheadLog.open(dir, { fs, segmentBytes: 4096 })
    wal.append(payload(0), 1)
    wal.append(payload(1), 1) // fills the first segment
    log.length = 0
    wal.append(payload(2), 1) // rotates
    expect(segments(dir)).toHaveLength(2)
    expect(log.filter((l) => !l.startsWith('create'))).toEqual([]) // nothing synced on this thread
    log.length = 0
    expect(wal.syncedSeq).toBe(0)
    const synced = wal.syncAsync()
    expect(wal.syncedSeq).toBe(0)
    expect(await synced).toBe(3)
    const [first, second] = segments(dir).map((n) => n.slice(-8, -4))
    expect(log).toEqual([`fdatasync ${first}`, 'fsync wal', `fdatasync ${second}`])
    wal.close()
  })

  it('a failed background sync of a rotated segment claims nothing; the next one syncs it again', async () => {
    const dir = tempDir()
    const { fs, log, setFail } = recordingFs()
    const wal = WriteAheadLog.open(dir, { fs, segmentBytes: 4096 })
    for (let i = 0; i < 3; i++) wal.append(payload(i), 1)
    setFail(true)
    const err = await wal.syncAsync().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(WalError)
    expect((err as WalError).code).toBe('VQ_WAL_IO')
    expect(wal.syncedSeq).toBe(0)
    setFail(false)
    log.length = 0
    expect(await wal.syncAsync()).toBe(3)
    const [first, second] = segments(dir).map((n) => n.slice(-8, -4))
    expect(log).toEqual([`fdatasync ${first}`, 'fsync wal', `fdatasync ${second}`])
    wal.close()
    const again = WriteAheadLog.open(dir)
    expect([...again.frames()].map((f) => f.firstSeq)).toEqual([0, 1, 2])
    again.close()
  })

  it('a log nobody syncs keeps at most a few rotated segments open: a rotation past that syncs the oldest itself', () => {
    const dir = tempDir()
    const { fs, log } = recordingFs()
    const wal = WriteAheadLog.open(dir, { fs, segmentBytes: 4096 })
    for (let i = 0; i < 40; i++) wal.append(payload(i), 1) // 20 segments, never synced
    expect(segments(dir).length).toBe(20)
    // 19 rotations, at most 4 waiting: the other 15 synced on this thread.
    const segmentSyncs = log.filter((l) => l.startsWith('fdatasyncSync') && /^fdatasyncSync \d+$/.test(l))
    expect(segmentSyncs.length).toBe(15)
    wal.close()
    const again = WriteAheadLog.open(dir)
    expect([...again.frames()].length).toBe(40)
    again.close()
  })

  it('ackAsync: the watermark is written in place, synced in the background, then delivered segments deleted', async () => {
    const dir = tempDir()
    const { fs, log } = recordingFs()
    const wal = WriteAheadLog.open(dir, { fs, segmentBytes: 4096 })
    for (let i = 0; i < 6; i++) wal.append(payload(i), 1)
    wal.sync()
    log.length = 0
    const acking = wal.ackAsync(4)
    expect(wal.ackedSeq).toBe(0) // not before the watermark is durable
    await expect(wal.ackAsync(5)).rejects.toMatchObject({ code: 'VQ_WAL_USAGE' }) // one at a time
    await acking
    expect(log).toEqual(['fdatasync ack'])
    expect(wal.ackedSeq).toBe(4)
    expect(readFileSync(join(dir, 'ack')).readBigUInt64LE(4)).toBe(4n)
    expect(segments(dir)).toHaveLength(1) // items 0-3 were in the first two segments
    wal.close()
  })

  it('ack() while an ackAsync runs: the higher watermark stays; a close before it returns deletes nothing for it', async () => {
    const dir = tempDir()
    const wal = WriteAheadLog.open(dir, { segmentBytes: 4096 })
    for (let i = 0; i < 6; i++) wal.append(payload(i), 1)
    wal.sync()
    const acking = wal.ackAsync(2)
    wal.ack(5)
    await acking
    expect(wal.ackedSeq).toBe(5)
    expect(readFileSync(join(dir, 'ack')).readBigUInt64LE(4)).toBe(5n)
    const late = wal.ackAsync(6)
    wal.close()
    await late
    expect(segments(dir)).toHaveLength(1) // (items 4-5): not deleted for an ack the close cut short
    // Its record was written in place before the close: items below 6 were
    // delivered, so it is a true watermark either way (the next open deletes the segment).
    const again = WriteAheadLog.open(dir)
    expect(again.ackedSeq).toBe(6)
    expect(segments(dir)).toHaveLength(0)
    again.close()
  })
})

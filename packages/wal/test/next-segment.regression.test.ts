import { execFile, spawn } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { nodeFs, type WalFs, WriteAheadLog } from '@vinequeue/wal'
import { describe, expect, it } from 'vitest'
import { segmentNames, tempDirs } from './temp-dirs.ts'

// The next segment is created in libuv's thread pool while the current one
// fills (`next-segment`, empty) and renamed at the rotation: creating a file
// on the owner thread waited for ext4's journal (one rotation stalled 124 ms).
// The owner thread then neither creates nor opens a file at a rotation, and
// a `next-segment` left by a crash is no segment to recovery, the CLI or
// retention.

const NEXT = 'next-segment'
const walIndex = new URL('../dist/index.js', import.meta.url).href
const bin = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url))
const tempDir = tempDirs('vq-wal-next-')
const payload = (i: number): Uint8Array => new Uint8Array(1500).fill(i & 0xff)
const segments = segmentNames
const firstSeqs = (wal: WriteAheadLog): number[] => [...wal.frames()].map((f) => f.firstSeq)
const intact = (wal: WriteAheadLog): boolean =>
  [...wal.frames()].every((f) => f.payload.byteLength === 1500 && f.payload.every((b) => b === f.firstSeq))

/** node:fs, logging what the owner thread does to files (the synchronous forms) and the background syncs. */
function recordingFs(failOpen = false) {
  const paths = new Map<number, string>()
  const log: string[] = []
  /** Pre-creations of the next segment that called back, and how many `opened()` has handed out. */
  let created = 0
  let seen = 0
  let wake: (() => void) | undefined
  const base = (p: string): string => p.split('/').pop()!
  const fs: WalFs = {
    ...nodeFs,
    openSync: (path, flags, mode) => {
      const fd = nodeFs.openSync(path, flags, mode)
      paths.set(fd, path)
      log.push(`openSync ${base(path)} ${flags}`)
      return fd
    },
    open: (path, flags, mode, cb) => {
      if (failOpen) {
        setImmediate(() => {
          cb(Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' }), -1)
          if (base(path) === NEXT) created++
          wake?.()
        })
        return
      }
      nodeFs.open!(path, flags, mode, (err, fd) => {
        if (!err) paths.set(fd, path)
        cb(err, fd)
        if (base(path) === NEXT) created++
        wake?.()
      })
    },
    renameSync: (from, to) => {
      nodeFs.renameSync(from, to)
      log.push(`renameSync ${base(from)} ${base(to)}`)
      for (const [fd, p] of paths) if (p === from) paths.set(fd, to)
    },
    fsyncSync: (fd) => {
      log.push(`fsyncSync ${base(paths.get(fd) ?? '?')}`)
      nodeFs.fsyncSync(fd)
    },
    fdatasyncSync: (fd) => {
      log.push(`fdatasyncSync ${base(paths.get(fd) ?? '?')}`)
      nodeFs.fdatasyncSync(fd)
    },
    fsync: (fd, cb) => {
      log.push(`fsync ${base(paths.get(fd) ?? '?')}`)
      nodeFs.fsync!(fd, cb)
    },
    fdatasync: (fd, cb) => {
      log.push(`fdatasync ${base(paths.get(fd) ?? '?')}`)
      nodeFs.fdatasync!(fd, cb)
    },
  }
  /** The next pre-creation (after those already awaited) has called back. */
  const opened = async (): Promise<void> => {
    while (created <= seen) await new Promise<void>((resolve) => (wake = resolve))
    seen++
  }
  return { fs, log, opened }
}

function cli(args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], (err, stdout) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout })
    })
  })
}

describe('the next segment, pre-created off the owner thread', () => {
  it('a rotation renames the pre-created segment: the owner thread creates, opens and syncs nothing', async () => {
    const dir = tempDir()
    const { fs, log, opened } = recordingFs()
    const wal = WriteAheadLog.open(dir, { fs, segmentBytes: 4096 })
    wal.append(payload(0), 1)
    expect(existsSync(join(dir, NEXT))).toBe(false) // not before the segment is half full
    wal.append(payload(1), 1) // half full: the next one is made in the pool
    await opened()
    expect(statSync(join(dir, NEXT)).size).toBe(0)
    log.length = 0
    wal.append(payload(2), 1) // rotates
    expect(segments(dir)).toEqual(['00000000000000000000.wal', '00000000000000000002.wal'])
    expect(log).toEqual([`renameSync ${NEXT} 00000000000000000002.wal`])
    log.length = 0
    expect(await wal.syncAsync()).toBe(3)
    // The directory's fsync covers the rename; it is opened in the thread pool too.
    expect(log).toEqual([
      'fdatasync 00000000000000000000.wal',
      'fsync wal',
      'fdatasync 00000000000000000002.wal',
    ])
    wal.close()
    expect(existsSync(join(dir, NEXT))).toBe(false) // never made again: the new segment is not half full
    const again = WriteAheadLog.open(dir)
    expect(firstSeqs(again)).toEqual([0, 1, 2])
    expect(intact(again)).toBe(true)
    again.close()
  })

  it('when the pre-creation fails, a rotation creates the segment on the owner thread, as without it', async () => {
    const dir = tempDir()
    const { fs, log, opened } = recordingFs(true)
    const wal = WriteAheadLog.open(dir, { fs, segmentBytes: 4096 })
    wal.append(payload(0), 1)
    wal.append(payload(1), 1) // half full: the pre-creation is tried, and fails
    await opened()
    for (let i = 2; i < 5; i++) wal.append(payload(i), 1)
    expect(log.filter((l) => l.endsWith('wx+'))).toEqual([
      'openSync 00000000000000000000.wal wx+',
      'openSync 00000000000000000002.wal wx+',
      'openSync 00000000000000000004.wal wx+',
    ])
    expect(log.some((l) => l.startsWith(`renameSync ${NEXT}`))).toBe(false)
    wal.close()
    const again = WriteAheadLog.open(dir)
    expect(firstSeqs(again)).toEqual([0, 1, 2, 3, 4])
    again.close()
  })

  it('close() while the next segment is being created: the creation removes its file when it ends', async () => {
    const dir = tempDir()
    const { fs, opened } = recordingFs()
    const wal = WriteAheadLog.open(dir, { fs, segmentBytes: 4096 })
    wal.append(payload(0), 1)
    wal.append(payload(1), 1) // half full: the creation starts in the pool
    wal.close() // before it called back
    await opened()
    expect(readdirSync(dir).filter((n) => n === NEXT)).toEqual([])
    const again = WriteAheadLog.open(dir)
    expect(firstSeqs(again)).toEqual([0, 1])
    again.close()
  })

  it('kill -9 with a pre-created segment present: nothing synced is lost, and recovery, the CLI and retention ignore it', async () => {
    const dir = tempDir()
    // A real process, killed once its log has synced frames and holds a pre-created next segment.
    const script = `
      import { existsSync } from 'node:fs'
      import { WriteAheadLog } from ${JSON.stringify(walIndex)}
      const dir = process.argv[1]
      const wal = WriteAheadLog.open(dir, { segmentBytes: 4096 })
      for (let i = 0; i < 8; i++) wal.append(new Uint8Array(1500).fill(i), 1)
      wal.sync()
      const ready = () => existsSync(dir + '/${NEXT}') ? process.stdout.write('ready\\n') : setImmediate(ready)
      ready()
      setInterval(() => {}, 1000)
    `
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, dir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    child.stdout.setEncoding('utf8')
    await new Promise<void>((resolve) =>
      child.stdout.on('data', (s: string) => s.includes('ready') && resolve()),
    )
    const exited = new Promise((resolve) => child.once('exit', (_code, signal) => resolve(signal)))
    child.kill('SIGKILL')
    expect(await exited).toBe('SIGKILL')
    expect(statSync(join(dir, NEXT)).size).toBe(0)
    const written = segments(dir)
    expect(written).toHaveLength(4)

    expect((await cli(['verify', dir])).code).toBe(0)
    const inspected = await cli(['inspect', dir])
    expect(inspected.code).toBe(0)
    expect(inspected.stdout).toMatch(
      /next {7}next-segment \(0 B\): created ahead of the next rotation; not a segment/,
    )
    expect(inspected.stdout).toMatch(/segments {3}4\n/)

    const wal = WriteAheadLog.open(dir, { segmentBytes: 4096 })
    expect(wal.recovery).toMatchObject({ segments: 4, pendingItems: 8, corruptRegions: 0, quarantined: 0 })
    expect(firstSeqs(wal)).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    expect(intact(wal)).toBe(true)
    for (let i = 8; i < 13; i++) wal.append(payload(i), 1)
    wal.sync()
    wal.ack(13) // every segment but the one being written goes; never the next one's file
    expect(segments(dir)).toEqual(['00000000000000000012.wal'])
    expect(wal.gaps).toBe(0)
    wal.close()
    const again = WriteAheadLog.open(dir)
    expect(again.recovery.pendingItems).toBe(0)
    again.close()
  })

  it('a next-segment holding zeros or garbage is not read as a segment, and is truncated before it becomes one', async () => {
    for (const filler of [new Uint8Array(8192), new Uint8Array(8192).fill(0x5a)]) {
      const dir = tempDir()
      mkdirSync(dir, { recursive: true })
      writeFileSync(join(dir, NEXT), filler)
      expect((await cli(['verify', dir])).code).toBe(0)
      const { fs, opened } = recordingFs()
      const wal = WriteAheadLog.open(dir, { fs, segmentBytes: 4096 })
      expect(wal.recovery).toMatchObject({ segments: 0, pendingItems: 0, corruptRegions: 0 })
      wal.append(payload(0), 1)
      wal.append(payload(1), 1) // half full: the leftover is opened again, truncated
      await opened()
      wal.append(payload(2), 1) // rotates into it
      wal.close()
      const again = WriteAheadLog.open(dir)
      expect(again.recovery.corruptRegions).toBe(0)
      expect(firstSeqs(again)).toEqual([0, 1, 2])
      expect(intact(again)).toBe(true)
      again.close()
    }
  })
})

import { readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { usableSegmentNames } from '../src/cli/log-files.ts'
import { nodeFs, WalError, type WalFs } from '../src/index.ts'
import { ioError, syncInBackground, writeControlFile } from '../src/log/io.ts'
import { isSegmentName, listSegments, segmentFirstSeq, segmentName, tmpName } from '../src/log/layout.ts'
import { tempDirs } from './temp-dirs.ts'

const tempDir = tempDirs('vq-wal-layout-', '')

describe('the directory layout', () => {
  it('names a segment by its first sequence number, 20 digits, and reads it back', () => {
    for (const seq of [0, 1, 1_048_576, Number.MAX_SAFE_INTEGER]) {
      const name = segmentName(seq)
      expect(name).toMatch(/^\d{20}\.wal$/)
      expect(isSegmentName(name)).toBe(true)
      expect(segmentFirstSeq(name)).toBe(seq)
    }
    for (const other of ['1.wal', '00000000000000000000.wal.tmp', 'ack', 'x0000000000000000000.wal']) {
      expect(isSegmentName(other)).toBe(false)
    }
  })

  it('lists segments in sequence order, strays (past 2^53) apart — the same listing for the log and the CLI', () => {
    const dir = tempDir()
    for (const name of [
      segmentName(2048),
      segmentName(0),
      '99999999999999999999.wal',
      'ack',
      'clean',
      '12.wal',
    ]) {
      writeFileSync(join(dir, name), '')
    }
    const listing = listSegments(nodeFs, dir)
    expect(listing).toEqual({
      names: [segmentName(0), segmentName(2048)],
      stray: ['99999999999999999999.wal'],
    })
    expect(usableSegmentNames(dir)).toEqual(listing)
  })
})

describe('the I/O helpers', () => {
  it('ioError: a WalError IO naming what failed, the system error in cause', () => {
    const cause = Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })
    const err = ioError('append', cause)
    expect(err).toBeInstanceOf(WalError)
    expect(err.code).toBe('VQ_WAL_IO')
    expect(err.message).toBe('WAL append failed: ENOSPC: no space left on device')
    expect(err.cause).toBe(cause)
  })

  it('writeControlFile: the file whole (0600), no tmp left; a failed rename leaves the old file', () => {
    const dir = tempDir()
    writeControlFile(nodeFs, dir, 'ack', new Uint8Array([1, 2, 3]), 'the watermark')
    expect(readdirSync(dir)).toEqual(['ack'])
    expect(statSync(join(dir, 'ack')).mode & 0o777).toBe(0o600)
    const failing: WalFs = {
      ...nodeFs,
      renameSync: () => {
        throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' })
      },
    }
    expect(() => writeControlFile(failing, dir, 'ack', new Uint8Array([4]), 'the watermark')).toThrow(
      expect.objectContaining({
        code: 'VQ_WAL_IO',
        message: 'WAL renaming the watermark failed: EIO: i/o error',
      }),
    )
    expect(statSync(join(dir, 'ack')).size).toBe(3)
    expect(readdirSync(dir).sort()).toEqual(['ack', tmpName('ack')])
  })

  it('syncInBackground: on this thread for a layer without the callback forms, the error as a rejection', async () => {
    const calls: string[] = []
    const fs: WalFs = {
      ...nodeFs,
      fdatasync: undefined,
      fsync: undefined,
      fdatasyncSync: () => {
        calls.push('fdatasyncSync')
        throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' })
      },
      fsyncSync: () => void calls.push('fsyncSync'),
    }
    await expect(syncInBackground(fs, 3, 'fdatasync')).rejects.toMatchObject({ code: 'EIO' })
    await expect(syncInBackground(fs, 3, 'fsync')).resolves.toBeUndefined()
    expect(calls).toEqual(['fdatasyncSync', 'fsyncSync'])
  })
})

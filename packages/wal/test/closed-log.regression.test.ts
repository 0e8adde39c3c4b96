import { nodeFs, type WalFs, WriteAheadLog } from '@vinequeue/wal'
import { describe, expect, it } from 'vitest'
import { tempDirs } from './temp-dirs.ts'

// A closed log answered with VQ_WAL_USAGE, the code of a bad argument, so a
// caller could not tell "closed meanwhile" (expected while stopping) from a
// mistake of its own: @vinequeue/core swallowed every USAGE error as
// "closed". Now it is VQ_WAL_CLOSED.

const tempDir = tempDirs('vq-wal-closed-')
const closed = expect.objectContaining({ name: 'WalError', code: 'VQ_WAL_CLOSED' })

describe('a closed log', () => {
  it('refuses every call with VQ_WAL_CLOSED; close() again does nothing', async () => {
    const wal = WriteAheadLog.open(tempDir())
    wal.append(new Uint8Array(10), 1)
    wal.close()
    expect(() => wal.append(new Uint8Array(10), 1)).toThrow(closed)
    expect(() => wal.sync()).toThrow(closed)
    expect(() => wal.syncAsync()).toThrow(closed)
    expect(() => wal.ack(1)).toThrow(closed)
    await expect(wal.ackAsync(1)).rejects.toEqual(closed)
    expect(() => wal.seal()).toThrow(closed)
    expect(() => wal.reader()).toThrow(closed)
    expect(() => [...wal.frames()]).toThrow(closed)
    expect(() => wal.close()).not.toThrow()
  })

  it('a syncAsync waiting behind a running one rejects with VQ_WAL_CLOSED when the log closes meanwhile', async () => {
    // fdatasync in the background held until released, so the close lands while it runs.
    let release: () => void = () => {}
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    const fs: WalFs = {
      ...nodeFs,
      fdatasync: (fd, callback) => {
        void held.then(() => nodeFs.fdatasync!(fd, callback))
      },
    }
    const wal = WriteAheadLog.open(tempDir(), { fs })
    wal.append(new Uint8Array(10), 1)
    const first = wal.syncAsync()
    wal.append(new Uint8Array(10), 1)
    const second = wal.syncAsync() // waits for the first
    wal.close()
    release()
    await expect(first).resolves.toBeGreaterThanOrEqual(1)
    await expect(second).rejects.toEqual(closed)
  })

  it('a bad argument is still VQ_WAL_USAGE', () => {
    const wal = WriteAheadLog.open(tempDir())
    expect(() => wal.append(new Uint8Array(10), 0)).toThrow(expect.objectContaining({ code: 'VQ_WAL_USAGE' }))
    wal.close()
  })
})

import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { crc32c as nativeCrc32c } from '@node-rs/crc32'
import { WriteAheadLog } from '@vinequeue/wal'
import { describe, expect, it } from 'vitest'
import { crc32c, SMALL_BYTES, tableCrc } from '../src/format/crc.ts'
import { tempDirs } from './temp-dirs.ts'

const tempDir = tempDirs('vq-wal-crc-')

describe('crc32c', () => {
  it('gives the CRC32C check value on both sides of SMALL_BYTES', () => {
    // The standard check value: CRC32C("123456789") = 0xe3069283.
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283)
    expect(crc32c(Buffer.from('xx123456789yy'), 2, 9)).toBe(0xe3069283)
    const large = randomBytes(SMALL_BYTES + 1)
    expect(crc32c(large)).toBe(nativeCrc32c(large))
  })

  it('matches the native module on every length around SMALL_BYTES, at any offset of a larger view', () => {
    const backing = randomBytes(4096)
    const view = new Uint8Array(backing.buffer, backing.byteOffset + 7, 4000)
    for (let length = 0; length <= 2 * SMALL_BYTES + 3; length++) {
      const offset = (length * 37) % (view.byteLength - length)
      const expected = nativeCrc32c(Buffer.from(view.buffer, view.byteOffset + offset, length))
      expect(crc32c(view, offset, length)).toBe(expected)
    }
    expect(crc32c(new Uint8Array(0))).toBe(0)
  })

  it('the tables match the native module, eight bytes per step and the rest, up to a 300 KiB payload', () => {
    const backing = randomBytes(300 * 1024 + 16)
    for (const length of [0, 1, 7, 8, 9, 28, 255, 4096 + 3, 64 * 1024, 256 * 1024, 300 * 1024]) {
      const offset = 5
      const expected = nativeCrc32c(Buffer.from(backing.buffer, backing.byteOffset + offset, length))
      expect(tableCrc(backing, offset, length), `length ${length}`).toBe(expected)
      expect(crc32c(backing, offset, length), `length ${length}`).toBe(expected)
    }
  })

  it('a fresh thread opens a new, a cleanly closed and a crashed log (walked or scanned) without loading the native module; a large append loads it', async () => {
    const dir = tempDir()
    // A crashed log whose last segment is walked at open: 5 MiB of 64 KiB frames, no clean record.
    const crashed = tempDir()
    const writer = WriteAheadLog.open(crashed)
    for (let i = 0; i < 80; i++) writer.append(randomBytes(64 * 1024), 1)
    writer.close()
    rmSync(join(crashed, 'clean'))
    // A crashed log whose last segment is small: scanned at open, every payload checked.
    const small = tempDir()
    const smallWriter = WriteAheadLog.open(small)
    smallWriter.append(randomBytes(64 * 1024), 1)
    smallWriter.close()
    rmSync(join(small, 'clean'))
    // A thread opens (creates) the log, closes it, reopens it, opens the
    // crashed ones, and says whether the addon was loaded; then appends a
    // frame and says again.
    const code = `
      const { parentPort, workerData } = require('node:worker_threads')
      const { createRequire } = require('node:module')
      const loaded = () => Object.keys(createRequire(workerData.walUrl).cache).some((k) => k.includes('@node-rs') || k.includes('crc32'))
      import(workerData.walUrl).then(({ WriteAheadLog }) => {
        WriteAheadLog.open(workerData.dir).close()
        const walked = WriteAheadLog.open(workerData.crashed)
        const wasWalked = walked.recovery.walked
        walked.close()
        const scanned = WriteAheadLog.open(workerData.small)
        const wasScanned = !scanned.recovery.walked && scanned.recovery.frames === 1
        scanned.close()
        const wal = WriteAheadLog.open(workerData.dir)
        const atOpen = loaded()
        wal.append(new Uint8Array(300 * 1024), 1) // (past the tables' budget)
        wal.sync()
        wal.close()
        parentPort.postMessage({ wasWalked, wasScanned, atOpen, afterAppend: loaded() })
      })
    `
    const walUrl = new URL('../dist/wal.js', import.meta.url).href
    const worker = new Worker(code, { eval: true, workerData: { dir, crashed, small, walUrl } })
    const [result] = await once(worker, 'message')
    await worker.terminate()
    expect(result).toEqual({ wasWalked: true, wasScanned: true, atOpen: false, afterAppend: true })
  })
})

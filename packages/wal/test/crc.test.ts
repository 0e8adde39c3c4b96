import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { Worker } from 'node:worker_threads'
import { crc32c as nativeCrc32c } from '@node-rs/crc32'
import { describe, expect, it } from 'vitest'
import { crc32c, SMALL_BYTES } from '../src/format/crc.ts'
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

  it('loads the native module in a fresh thread only when a payload is checked, not to open a new or cleanly closed log', async () => {
    const dir = tempDir()
    // A thread opens (creates) the log, closes it, reopens it, and says whether
    // the addon was loaded; then appends a frame and says again.
    const code = `
      const { parentPort, workerData } = require('node:worker_threads')
      const { createRequire } = require('node:module')
      const loaded = () => Object.keys(createRequire(workerData.walUrl).cache).some((k) => k.includes('@node-rs') || k.includes('crc32'))
      import(workerData.walUrl).then(({ WriteAheadLog }) => {
        WriteAheadLog.open(workerData.dir).close()
        const wal = WriteAheadLog.open(workerData.dir)
        const atOpen = loaded()
        wal.append(new Uint8Array(${SMALL_BYTES * 4}), 1)
        wal.sync()
        wal.close()
        parentPort.postMessage({ atOpen, afterAppend: loaded() })
      })
    `
    const walUrl = new URL('../dist/wal.js', import.meta.url).href
    const worker = new Worker(code, { eval: true, workerData: { dir, walUrl } })
    const [result] = await once(worker, 'message')
    await worker.terminate()
    expect(result).toEqual({ atOpen: false, afterAppend: true })
  })
})

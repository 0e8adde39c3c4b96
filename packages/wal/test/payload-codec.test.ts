import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { crc32c } from '@node-rs/crc32'
import { FrameFlag, WalError, WriteAheadLog } from '@vinequeue/wal'
import { describe, expect, it } from 'vitest'
import { tempDirs } from './temp-dirs.ts'

const tempDir = tempDirs('vq-wal-codec-')

const text = (i: number): Uint8Array =>
  Buffer.from(`{"event":"page_view","user":"user-${i % 10}","path":"/p/${i % 3}"}`.repeat(20))
const noise = (n: number): Uint8Array => randomBytes(n)
const key1 = randomBytes(32)
const key2 = randomBytes(32)

function roundTrip(options: Parameters<typeof WriteAheadLog.open>[1], payloads: Uint8Array[]) {
  const dir = tempDir()
  const wal = WriteAheadLog.open(dir, options)
  for (const p of payloads) wal.append(p, 1)
  wal.close()
  const again = WriteAheadLog.open(dir, options)
  const got = [...again.frames()]
  again.close()
  return { dir, got }
}

describe('compression', () => {
  it('snappy shrinks compressible frames, skips the ones it would not shrink, and reads both back', () => {
    const payloads = [text(1), noise(300), text(2)]
    const { dir, got } = roundTrip({ compression: true }, payloads)
    expect(got.map((f) => Buffer.from(f.payload))).toEqual(payloads.map((p) => Buffer.from(p)))
    expect(got.map((f) => (f.flags & FrameFlag.COMPRESSED) !== 0)).toEqual([true, false, true])
    const size = readdirSync(dir)
      .filter((n) => n.endsWith('.wal'))
      .reduce((s, n) => s + readFileSync(join(dir, n)).byteLength, 0)
    expect(size).toBeLessThan(payloads.reduce((s, p) => s + p.byteLength, 0))
  })

  it('off by default: frames are stored as given', () => {
    const { got } = roundTrip({}, [text(1)])
    expect(got[0]!.flags).toBe(0)
    expect(Buffer.from(got[0]!.payload)).toEqual(Buffer.from(text(1)))
  })

  it('threads that load the codec start and exit repeatedly without crashing the process', async () => {
    for (let i = 0; i < 12; i++) {
      const dir = tempDir()
      await new Promise<void>((resolve, reject) => {
        const w = new Worker(
          `const { workerData } = require('node:worker_threads');
           import('@vinequeue/wal').then(({ WriteAheadLog }) => {
             const wal = WriteAheadLog.open(workerData.dir, { compression: true });
             wal.append(Buffer.alloc(10000, 97), 1); wal.close();
             process.exit(0);
           });`,
          { eval: true, workerData: { dir } },
        )
        w.on('error', reject)
        w.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))))
      })
      const wal = WriteAheadLog.open(dir, { compression: true })
      expect([...wal.frames()]).toHaveLength(1)
      wal.close()
    }
  })

  it('a long synchronous compression loop in a thread keeps memory bounded (copyOutputData)', async () => {
    const rss = await new Promise<number>((resolve, reject) => {
      const w = new Worker(
        `const { parentPort } = require('node:worker_threads');
         import('@vinequeue/wal').then(({ WriteAheadLog }) => {
           const fs = require('node:fs'), os = require('node:os'), path = require('node:path');
           const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vq-wal-mem-'));
           const wal = WriteAheadLog.open(path.join(dir, 'wal'), { compression: true, segmentBytes: 1 << 20 });
           // Half random, half zeros: snappy's output (~130 KB) is kept, and large.
           const payload = Buffer.concat([require('node:crypto').randomBytes(128 * 1024), Buffer.alloc(128 * 1024)]);
           const before = process.memoryUsage().rss;
           // 3000 frames (~750 MB) through snappy without ever returning to the event
           // loop: external output buffers freed only on return would pile up ~400 MB.
           for (let i = 0; i < 3000; i++) { wal.append(payload, 1); if (i % 20 === 0) wal.ack(wal.nextSeq); }
           const grown = process.memoryUsage().rss - before;
           wal.close(); fs.rmSync(dir, { recursive: true, force: true });
           parentPort.postMessage(grown);
         });`,
        { eval: true },
      )
      w.once('message', resolve)
      w.on('error', reject)
    })
    expect(rss).toBeLessThan(200 * 1024 * 1024)
  })
})

describe('encryption (AES-256-GCM)', () => {
  const encryption = { keyId: 1, keys: { 1: key1 } }

  it('round trip, with compression, and nothing readable on disk', () => {
    const payloads = [text(1), text(2)]
    const { dir, got } = roundTrip({ encryption, compression: true }, payloads)
    expect(got.map((f) => Buffer.from(f.payload))).toEqual(payloads.map((p) => Buffer.from(p)))
    expect(got.every((f) => f.flags === (FrameFlag.ENCRYPTED | FrameFlag.COMPRESSED) && f.keyId === 1)).toBe(
      true,
    )
    const disk = readdirSync(dir)
      .map((n) => readFileSync(join(dir, n)).toString('latin1'))
      .join('')
    expect(disk).not.toContain('page_view')
    expect(disk).not.toContain(key1.toString('latin1'))
  })

  it('the wrong key is a clear WalError, never garbage', () => {
    const dir = tempDir()
    const wal = WriteAheadLog.open(dir, { encryption })
    wal.append(text(1), 1)
    wal.close()
    const wrong = WriteAheadLog.open(dir, { encryption: { keyId: 1, keys: { 1: key2 } } })
    expect(() => [...wrong.frames()]).toThrow(expect.objectContaining({ code: 'VQ_WAL_DECRYPT' }))
    wrong.close()
    const none = WriteAheadLog.open(dir)
    expect(() => [...none.frames()]).toThrow(expect.objectContaining({ code: 'VQ_WAL_KEY_MISSING' }))
    none.close()
  })

  it('a tampered frame (with its CRCs fixed up) fails authentication', () => {
    const dir = tempDir()
    const wal = WriteAheadLog.open(dir, { encryption })
    wal.append(text(1), 1)
    wal.close()
    const [segment] = readdirSync(dir).filter((n) => n.endsWith('.wal'))
    const bytes = Buffer.from(readFileSync(join(dir, segment!)))
    bytes[32 + 20]! ^= 0x01 // a ciphertext byte
    bytes.writeUInt32LE(crc32c(bytes.subarray(32)), 24) // payload CRC recomputed
    bytes.writeUInt32LE(crc32c(bytes.subarray(0, 28)), 28) // header CRC recomputed
    writeFileSync(join(dir, segment!), bytes)
    const again = WriteAheadLog.open(dir, { encryption })
    expect(again.recovery.corruptRegions).toBe(0)
    let err: unknown
    try {
      ;[...again.frames()]
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(WalError)
    expect((err as WalError).code).toBe('VQ_WAL_DECRYPT')
    again.close()
  })

  it('key rotation: new frames use the new key, old frames stay readable with the old key supplied', () => {
    const dir = tempDir()
    const a = WriteAheadLog.open(dir, { encryption })
    a.append(text(1), 1)
    a.close()
    const rotated = { keyId: 2, keys: { 1: key1, 2: key2 } }
    const b = WriteAheadLog.open(dir, { encryption: rotated })
    b.append(text(2), 1)
    expect(
      [...b.frames()].map((f) => [
        f.keyId,
        Buffer.from(f.payload).equals(Buffer.from(f.keyId === 1 ? text(1) : text(2))),
      ]),
    ).toEqual([
      [1, true],
      [2, true],
    ])
    b.close()
  })

  it('rejects keys that are not 32 bytes, or a write key it was not given', () => {
    expect(() =>
      WriteAheadLog.open(tempDir(), { encryption: { keyId: 1, keys: { 1: randomBytes(16) } } }),
    ).toThrow(/32 bytes/)
    expect(() => WriteAheadLog.open(tempDir(), { encryption: { keyId: 3, keys: { 1: key1 } } })).toThrow(
      /no key 3/,
    )
  })
})

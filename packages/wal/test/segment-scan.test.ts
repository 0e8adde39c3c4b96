import { encodeFrame, scanSegment, scanSegmentChunks } from '@vinequeue/wal'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'

/** A segment of frames with the given payload sizes (payload bytes tell which frame they belong to). */
function segment(sizes: number[]): Uint8Array {
  let seq = 0
  const frames = sizes.map((size, i) => {
    const payload = new Uint8Array(size).map((_, k) => (i * 31 + k) & 0xff)
    const frame = encodeFrame(payload, { flags: 0, keyId: 0, firstSeq: seq, count: 1 + (i % 3) })
    seq += 1 + (i % 3)
    return frame
  })
  return Buffer.concat(frames)
}

/** scanSegmentChunks over `bytes` as a file, counting the reads. */
function chunked(bytes: Uint8Array, chunkBytes: number) {
  let reads = 0
  const scan = scanSegmentChunks(
    bytes.byteLength,
    (into, position) => {
      reads++
      const n = Math.min(into.byteLength, bytes.byteLength - position)
      into.set(bytes.subarray(position, position + n))
      return n
    },
    chunkBytes,
  )
  return { scan, reads }
}

const sizes = fc.array(fc.integer({ min: 0, max: 700 }), { minLength: 0, maxLength: 30 })
const chunkBytes = fc.integer({ min: 1, max: 2048 })

describe('scanSegmentChunks', () => {
  it('finds exactly what scanSegment finds in an undamaged segment, whatever the chunk size cuts', () => {
    fc.assert(
      fc.property(sizes, chunkBytes, (s, chunk) => {
        const bytes = segment(s)
        const { scan } = chunked(bytes, chunk)
        expect(scan).toEqual(scanSegment(bytes))
      }),
      { numRuns: 300 },
    )
  })

  it('reads a frame larger than the chunk whole, and reads each byte about once', () => {
    const bytes = segment([10, 5000, 20, 9000, 3])
    const { scan, reads } = chunked(bytes, 256)
    expect(scan?.frames.map((f) => f.header.length)).toEqual([10, 5000, 20, 9000, 3])
    expect(reads).toBeLessThan(bytes.byteLength / 256 + 10)
  })

  it('gives up (undefined) on damage or a torn end, so that the caller scans the whole file', () => {
    fc.assert(
      fc.property(
        sizes.filter((s) => s.length > 0),
        chunkBytes,
        fc.nat(),
        fc.boolean(),
        (s, chunk, at, tear) => {
          const bytes = Buffer.from(segment(s))
          const damaged = tear ? bytes.subarray(0, at % bytes.byteLength) : bytes
          if (!tear) damaged[at % bytes.byteLength]! ^= 0x10
          const whole = scanSegment(damaged)
          const { scan } = chunked(damaged, chunk)
          if (whole.damaged.length === 0) expect(scan).toEqual(whole)
          else expect(scan).toBeUndefined()
        },
      ),
      { numRuns: 300 },
    )
  })

  it('gives up when the file ends before the size it was given', () => {
    const bytes = segment([100, 100])
    const scan = scanSegmentChunks(bytes.byteLength + 50, (into, position) => {
      const n = Math.max(0, Math.min(into.byteLength, bytes.byteLength - position))
      into.set(bytes.subarray(position, position + n))
      return n
    })
    expect(scan).toBeUndefined()
  })
})

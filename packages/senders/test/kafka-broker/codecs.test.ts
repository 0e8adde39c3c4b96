import { compressionsAlgorithms, createRecordsBatch } from '@platformatic/kafka'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { crc32c, lz4Decompress, snappyDecompress, xxh32 } from './codecs.ts'
import { CorruptBatchError, decodeRecordBatches } from './record-batch.ts'

// The stand-in's decoders are what the Kafka sender tests trust, so they are
// checked here: against published test vectors, and against the client's
// encoders on arbitrary input (bytes with runs, so that matches occur).
const bytes = fc
  .array(
    fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc.constantFrom(Buffer.alloc(300, 7), Buffer.from('abcabcabc')),
    ),
    {
      maxLength: 40,
    },
  )
  .map((parts) => Buffer.concat(parts))

describe('broker stand-in codecs', () => {
  it('checksums match published vectors', () => {
    expect(crc32c(Buffer.from('123456789')).toString(16)).toBe('e3069283') // RFC 3720 B.4
    expect(xxh32(Buffer.alloc(0)).toString(16)).toBe('2cc5d05')
    expect(xxh32(Buffer.from('abc')).toString(16)).toBe('32d153ff')
  })

  it('decode what the client compresses (snappy, lz4)', () => {
    // Non-empty input only: @platformatic/wasm-utils 0.2.1 (the client's
    // codecs) keeps a view of its WebAssembly memory that detaches when the
    // memory grows, and only an empty input after a growth reuses it (a
    // TypeError). The client compresses a record set, which is never empty.
    fc.assert(
      fc.property(
        bytes.filter((input) => input.length > 0),
        (input) => {
          expect(snappyDecompress(compressionsAlgorithms.snappy.compressSync(input) as Buffer)).toEqual(input)
          expect(lz4Decompress(compressionsAlgorithms.lz4.compressSync(input) as Buffer)).toEqual(input)
        },
      ),
      { numRuns: 200 },
    )
  })

  it('decode record batches the client writes, and refuse a flipped byte (CRC-32C)', () => {
    const message = fc.record({
      key: fc.option(bytes, { nil: undefined }),
      value: bytes,
      headers: fc.array(fc.tuple(fc.string({ maxLength: 8 }), bytes), { maxLength: 3 }),
    })
    fc.assert(
      fc.property(
        fc.array(message, { minLength: 1, maxLength: 10 }),
        fc.constantFrom('none', 'gzip', 'snappy', 'lz4', 'zstd'),
        fc.nat(),
        (messages, compression, flip) => {
          const batch = createRecordsBatch(
            messages.map((m) => ({
              topic: 't',
              key: m.key,
              value: m.value,
              headers: new Map(m.headers.map(([k, v]) => [Buffer.from(k), v])),
            })),
            { compression },
          ).buffer
          const [decoded, ...rest] = decodeRecordBatches(batch)
          expect(rest).toEqual([])
          expect(decoded!.compression).toBe(compression)
          expect(
            decoded!.records.map((r) => ({ key: r.key ?? undefined, value: r.value, headers: r.headers })),
          ).toEqual(messages.map((m) => ({ key: m.key, value: m.value, headers: m.headers })))

          // Any byte after the CRC field (offset 21) is covered by it.
          const damaged = Buffer.from(batch)
          const at = 21 + (flip % (damaged.length - 21))
          damaged[at]! ^= 0x01
          expect(() => decodeRecordBatches(damaged)).toThrow(CorruptBatchError)
        },
      ),
      { numRuns: 200 },
    )
  })
})

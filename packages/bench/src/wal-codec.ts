/**
 * Question: would zstd (node:zlib, in every supported Node) serve the WAL
 * better than snappy, its codec today? Both compress the payloads the WAL
 * writes: 1000 bench events as core frames a batch of `enqueue` calls
 * (wal-log.ts `encodeBatch`, ~84 KB), BATCHES distinct ones, each codec over
 * all of them in every round, interleaved. snappy is called as the WAL calls
 * it (`snappy` 7, `copyOutputData: true`); zstd through `zstdCompressSync` /
 * `zstdDecompressSync` at levels -5 (one of its fast levels), 1 and 3 (3 is
 * zstd's default and what the Kafka client uses). node:zlib's one-shot calls
 * set up a fresh zstd context per call, part of what is measured: it is
 * what a per-frame codec in the WAL would pay.
 *
 * Figures: compressed size as a fraction of the input (lower is smaller), and
 * compress / decompress speed in MB/s of uncompressed bytes, one thread —
 * each beside snappy's from the same rounds.
 *
 * Standalone: `node packages/bench/dist/wal-codec.js` (after a build) prints
 * the table; `pnpm bench` runs it as the `wal_codec` step.
 */
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { constants, zstdCompressSync, zstdDecompressSync } from 'node:zlib'
import { type BenchEvent, makeEvents } from './event.ts'
import { type Figure, formatTable, progress } from './report.ts'
import { interleave, median } from './stats.ts'
import { encodeBatch } from './wal-log.ts'

const BATCH_ITEMS = 1000
const BATCHES = 64
const ROUNDS = 9
/** Passes over the BATCHES per timed run, so that one run lasts tens of ms. */
const PASSES = 12

type Snappy = typeof import('snappy')
// The WAL loads snappy the same way (CommonJS, on first use).
const snappy = createRequire(import.meta.url)('snappy') as Snappy

interface Codec {
  readonly name: string
  compress(input: Buffer): Buffer
  decompress(compressed: Buffer): Buffer
}

const zstd = (level: number): Codec => ({
  name: `zstd${level}`,
  compress: (input) => zstdCompressSync(input, { params: { [constants.ZSTD_c_compressionLevel]: level } }),
  decompress: (compressed) => zstdDecompressSync(compressed),
})

const CODECS: readonly Codec[] = [
  {
    name: 'snappy',
    compress: (input) => snappy.compressSync(input, { copyOutputData: true }),
    decompress: (compressed) =>
      snappy.uncompressSync(compressed, { asBuffer: true, copyOutputData: true }) as Buffer,
  },
  zstd(-5),
  zstd(1),
  zstd(3),
]

interface Samples {
  ratio: number
  compress: number[]
  decompress: number[]
}

/** MB/s of `bytes` input bytes handled in `ms`. */
const mbPerS = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000)

function timeCodec(
  codec: Codec,
  inputs: readonly Buffer[],
  compressed: readonly Buffer[],
  samples: Samples,
): void {
  const bytes = inputs.reduce((n, b) => n + b.byteLength, 0) * PASSES
  let t0 = performance.now()
  for (let p = 0; p < PASSES; p++) for (const input of inputs) codec.compress(input)
  samples.compress.push(mbPerS(bytes, performance.now() - t0))
  t0 = performance.now()
  for (let p = 0; p < PASSES; p++) for (const c of compressed) codec.decompress(c)
  samples.decompress.push(mbPerS(bytes, performance.now() - t0))
}

export async function runWalCodec(pool: readonly BenchEvent[]): Promise<Figure[]> {
  const inputs = Array.from({ length: BATCHES }, (_, b) => {
    const batch = encodeBatch(pool, b * BATCH_ITEMS, BATCH_ITEMS)
    return Buffer.from(batch.buffer, batch.byteOffset, batch.byteLength)
  })
  const inputBytes = inputs.reduce((n, b) => n + b.byteLength, 0)
  const samples = new Map<string, Samples>()
  const compressed = new Map<string, Buffer[]>()
  for (const codec of CODECS) {
    const out = inputs.map((input) => codec.compress(input))
    // Every codec must give back exactly its input (checked once, not timed).
    out.forEach((c, i) => {
      if (!codec.decompress(c).equals(inputs[i]!)) throw new Error(`${codec.name}: round trip differs`)
    })
    compressed.set(codec.name, out)
    const ratio = out.reduce((n, b) => n + b.byteLength, 0) / inputBytes
    samples.set(codec.name, { ratio, compress: [], decompress: [] })
  }
  progress(
    `  ${BATCHES} batches of ${BATCH_ITEMS} events, ${(inputBytes / BATCHES / 1024).toFixed(1)} KiB each; ` +
      CODECS.map((c) => `${c.name} ${(samples.get(c.name)!.ratio * 100).toFixed(1)} %`).join(', '),
  )
  // Warm-up (JIT, zstd contexts, snappy's native module), not recorded.
  for (const codec of CODECS)
    timeCodec(codec, inputs, compressed.get(codec.name)!, { ratio: 0, compress: [], decompress: [] })
  await interleave(
    ROUNDS,
    CODECS.map(
      (codec) => () => timeCodec(codec, inputs, compressed.get(codec.name)!, samples.get(codec.name)!),
    ),
    (r) =>
      progress(
        `wal_codec round ${r}/${ROUNDS}: ` +
          CODECS.map((c) => {
            const s = samples.get(c.name)!
            return `${c.name} ${s.compress.at(-1)!.toFixed(0)} / ${s.decompress.at(-1)!.toFixed(0)} MB/s`
          }).join(', ') +
          ' (compress / decompress)',
      ),
  )
  const base = samples.get('snappy')!
  const figures: Figure[] = []
  for (const codec of CODECS.filter((c) => c.name !== 'snappy')) {
    const s = samples.get(codec.name)!
    figures.push(
      {
        name: `wal_codec_${codec.name}.size_ratio`,
        value: s.ratio,
        unit: 'of input',
        baseline: { name: 'wal_codec_snappy.size_ratio', value: base.ratio },
      },
      {
        name: `wal_codec_${codec.name}.compress_mb_per_s`,
        value: median(s.compress),
        unit: 'MB/s',
        baseline: { name: 'wal_codec_snappy.compress_mb_per_s', value: median(base.compress) },
      },
      {
        name: `wal_codec_${codec.name}.decompress_mb_per_s`,
        value: median(s.decompress),
        unit: 'MB/s',
        baseline: { name: 'wal_codec_snappy.decompress_mb_per_s', value: median(base.decompress) },
      },
    )
  }
  return figures
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  progress(`node ${process.version}: wal_codec alone`)
  process.stdout.write(`\n${formatTable(await runWalCodec(makeEvents()))}\n\n`)
}

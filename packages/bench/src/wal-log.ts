/**
 * Question: what do the write-ahead log's own operations cost, with no queue
 * around them? Two figures, on @vinequeue/wal directly:
 *
 * - fsync latency: a `WriteAheadLog.sync()` after each append of one batch
 *   frame (1000 bench events as single-item records, the batch format core
 *   appends: ~110 KB), timed alone; p50 and p99 per round, the median over
 *   rounds. Floor, same rounds: `fdatasyncSync` after `writeSync` of the same
 *   bytes appended to a plain file in the same directory — the disk's cost,
 *   which no log can avoid.
 * - recovery throughput: a log of RECOVERY_ITEMS pending items in 1000-item
 *   frames (written once, untimed); a round times `WriteAheadLog.open(dir)`
 *   then iterating `frames()` to the end, counting items by each frame's
 *   `count`. Variant: the same, plus walking each frame's records with core's
 *   batch reader (`new Batch(payload, count).payloads()`, no decoding). Floor:
 *   `readFileSync` of every segment — the bytes any recovery reads. The log
 *   was just written, so its pages are in the page cache: this is the CPU and
 *   copy cost of recovery, not the disk's read speed (dropping the cache needs
 *   root and disturbs the other processes of the machine).
 *
 * Batches are encoded before anything is timed and cycled.
 */
import {
  closeSync,
  fdatasyncSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Batch } from '@vinequeue/core'
import { WriteAheadLog } from '@vinequeue/wal'
import { frameRecords } from './batch-frame.ts'
import { queuePackr } from './enqueue.ts'
import { type BenchEvent, POOL_MASK } from './event.ts'
import { type Figure, formatValue, progress } from './report.ts'
import { interleave, median, percentileOfSorted, ROUNDS } from './stats.ts'

/** Items per frame: a batch of the default size. */
const BATCH_ITEMS = 1000
/** Distinct pre-encoded batches, cycled. */
const BATCHES = 64
const SYNCS_PER_ROUND = 1000
const WARMUP_SYNCS = 50
/** Items in the recovery log (3000 frames, ~340 MB). */
const RECOVERY_ITEMS = 3_000_000
/** The floor's file is replaced past the WAL's default segment size, as a segment would be. */
const FILE_BYTES = 64 * 1024 * 1024

/** `count` events as core frames a batch of `enqueue` calls (one record each). */
export function encodeBatch(pool: readonly BenchEvent[], first: number, count: number): Uint8Array {
  const packr = queuePackr()
  return frameRecords(
    Array.from({ length: count }, (_, i) => packr.pack(pool[(first + i) & POOL_MASK]).slice()),
  )
}

/** Times `wal.sync()` after each of `n` appends; the sorted latencies (ms). */
function timeWalSyncs(wal: WriteAheadLog, batches: readonly Uint8Array[], n: number): Float64Array {
  const out = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    wal.append(batches[i % batches.length]!, BATCH_ITEMS)
    const t0 = performance.now()
    wal.sync()
    out[i] = performance.now() - t0
  }
  // Everything is delivered: segments behind the one being written are deleted (not timed).
  wal.ack(wal.nextSeq)
  return out.sort()
}

/** The floor: plain appends to a file, each followed by a timed fdatasync. */
class PlainFile {
  readonly #dir: string
  #path = ''
  #fd = -1
  #size = 0
  #files = 0

  constructor(dir: string) {
    this.#dir = dir
  }

  /** The sorted latencies (ms) of `n` fdatasyncs, each after a batch appended. */
  time(batches: readonly Uint8Array[], n: number): Float64Array {
    const out = new Float64Array(n)
    for (let i = 0; i < n; i++) {
      const bytes = batches[i % batches.length]!
      if (this.#fd < 0 || this.#size + bytes.byteLength > FILE_BYTES) this.#next()
      writeSync(this.#fd, bytes, 0, bytes.byteLength, this.#size)
      this.#size += bytes.byteLength
      const t0 = performance.now()
      fdatasyncSync(this.#fd)
      out[i] = performance.now() - t0
    }
    return out.sort()
  }

  /** A new file, the old one deleted (as the WAL deletes delivered segments). */
  #next(): void {
    this.close()
    this.#path = join(this.#dir, `plain-${this.#files++}`)
    this.#fd = openSync(this.#path, 'wx')
    this.#size = 0
  }

  close(): void {
    if (this.#fd < 0) return
    closeSync(this.#fd)
    rmSync(this.#path)
    this.#fd = -1
  }
}

async function runFsync(root: string, batches: readonly Uint8Array[]): Promise<Figure[]> {
  const wal = WriteAheadLog.open(join(root, 'fsync-wal'))
  const plain = new PlainFile(root)
  const walP50: number[] = []
  const walP99: number[] = []
  const floorP50: number[] = []
  const floorP99: number[] = []
  try {
    timeWalSyncs(wal, batches, WARMUP_SYNCS)
    plain.time(batches, WARMUP_SYNCS)
    await interleave(
      ROUNDS,
      [
        () => {
          const t = timeWalSyncs(wal, batches, SYNCS_PER_ROUND)
          walP50.push(percentileOfSorted(t, 50))
          walP99.push(percentileOfSorted(t, 99))
        },
        () => {
          const t = plain.time(batches, SYNCS_PER_ROUND)
          floorP50.push(percentileOfSorted(t, 50))
          floorP99.push(percentileOfSorted(t, 99))
        },
      ],
      (r) =>
        progress(
          `wal_log fsync round ${r}/${ROUNDS}: WriteAheadLog.sync p50 ${walP50.at(-1)!.toFixed(3)} p99 ${walP99.at(-1)!.toFixed(3)} ms, ` +
            `fdatasync p50 ${floorP50.at(-1)!.toFixed(3)} p99 ${floorP99.at(-1)!.toFixed(3)} ms`,
        ),
    )
  } finally {
    wal.close()
    plain.close()
  }
  return [
    {
      name: 'wal.fsync_p50_ms',
      value: median(walP50),
      unit: 'ms',
      baseline: { name: 'fdatasync_after_append.p50_ms', value: median(floorP50) },
    },
    {
      name: 'wal.fsync_p99_ms',
      value: median(walP99),
      unit: 'ms',
      baseline: { name: 'fdatasync_after_append.p99_ms', value: median(floorP99) },
    },
  ]
}

/** One timed recovery: open, then every pending frame; items/s. */
function recoverRound(dir: string, walkRecords: boolean): number {
  const t0 = performance.now()
  const wal = WriteAheadLog.open(dir)
  let items = 0
  let elapsed: number
  try {
    for (const frame of wal.frames()) {
      if (!walkRecords) {
        items += frame.count
        continue
      }
      const n = new Batch(frame.payload, frame.count).payloads().length
      if (n !== frame.count) throw new Error(`frame ${frame.firstSeq}: ${n} records for ${frame.count} items`)
      items += n
    }
    elapsed = performance.now() - t0
  } finally {
    wal.close() // not timed
  }
  if (items !== RECOVERY_ITEMS) throw new Error(`recovered ${items} items, expected ${RECOVERY_ITEMS}`)
  return items / (elapsed / 1000)
}

/** The floor: every segment's bytes read; items/s. */
function readSegmentsRound(dir: string): number {
  const t0 = performance.now()
  let bytes = 0
  for (const name of readdirSync(dir))
    if (name.endsWith('.wal')) bytes += readFileSync(join(dir, name)).byteLength
  const elapsed = performance.now() - t0
  if (bytes === 0) throw new Error('no segment read')
  return RECOVERY_ITEMS / (elapsed / 1000)
}

async function runRecovery(root: string, batches: readonly Uint8Array[]): Promise<Figure[]> {
  const dir = join(root, 'recovery-wal')
  const wal = WriteAheadLog.open(dir)
  for (let i = 0; i < RECOVERY_ITEMS / BATCH_ITEMS; i++) wal.append(batches[i % batches.length]!, BATCH_ITEMS)
  wal.close()
  progress(`  recovery log: ${RECOVERY_ITEMS} items, ${formatValue(wal.sizeBytes / 1e6)} MB`)
  const count: number[] = []
  const walk: number[] = []
  const floor: number[] = []
  recoverRound(dir, false) // warm-up (JIT; the pages are already cached)
  await interleave(
    ROUNDS,
    [
      () => void count.push(recoverRound(dir, false)),
      () => void walk.push(recoverRound(dir, true)),
      () => void floor.push(readSegmentsRound(dir)),
    ],
    (r) =>
      progress(
        `wal_log recovery round ${r}/${ROUNDS}: open+frames ${(count.at(-1)! / 1e6).toFixed(2)}, ` +
          `+ record walk ${(walk.at(-1)! / 1e6).toFixed(2)}, read segments ${(floor.at(-1)! / 1e6).toFixed(2)} M items/s`,
      ),
  )
  const recovery = median(count)
  return [
    {
      name: 'recovery.items_per_s',
      value: recovery,
      unit: 'items/s',
      baseline: { name: 'read_segments.items_per_s', value: median(floor) },
    },
    {
      name: 'recovery_record_walk.items_per_s',
      value: median(walk),
      unit: 'items/s',
      baseline: { name: 'recovery.items_per_s', value: recovery },
    },
  ]
}

export async function runWalLog(pool: readonly BenchEvent[]): Promise<Figure[]> {
  const root = mkdtempSync(join(tmpdir(), 'vq-bench-wal-log-'))
  try {
    const batches = Array.from({ length: BATCHES }, (_, b) => encodeBatch(pool, b * BATCH_ITEMS, BATCH_ITEMS))
    progress(`  frames of ${BATCH_ITEMS} events, ${formatValue(batches[0]!.byteLength / 1000)} KB each`)
    return [...(await runFsync(root, batches)), ...(await runRecovery(root, batches))]
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
}

import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { checksum, makeEvent } from './events.ts'
import type { LedgerSnapshot } from './sink/ledger.ts'

export interface Verification {
  readonly expected: number
  /** Distinct events the sink stored. */
  readonly unique: number
  /** Events sent that the sink never stored. */
  readonly missing: number
  /** Extra copies stored (at-least-once: a batch retried after the sink had stored it). */
  readonly duplicates: number
  /**
   * Events whose content differs from what was produced: a first copy with
   * the wrong checksum, a later copy unlike the first, or a line that is not
   * an event of this run.
   */
  readonly corrupted: number
  /** The first few missing ids, to start looking. */
  readonly missingIds: readonly number[]
  /** How long the check took (ms). */
  readonly ms: number
}

/** One thread's share of the check: ids `from` … `to - 1`. */
export interface RangeCheck {
  readonly copies: Uint8Array
  readonly sums: Uint32Array
  readonly from: number
  readonly to: number
}

export interface RangeResult {
  readonly missing: number
  readonly mismatched: number
  readonly missingIds: number[]
}

const MISSING_IDS_SHOWN = 10

/**
 * Checks the sink's ledger against the events as they were produced:
 * `makeEvent(id)` is rebuilt for every id and the checksum of its JSON text
 * compared with the one the sink took of what it received. Nothing from the
 * queue's side (its counters, what it believes it sent) takes part. The ids
 * are split between worker threads (verify-thread.ts) reading the ledger
 * from shared memory: rebuilding and encoding a million events is ~2.5 s of CPU here.
 */
export async function verify(ledger: LedgerSnapshot, expected: number): Promise<Verification> {
  const startedAt = performance.now()
  const copies = new Uint8Array(new SharedArrayBuffer(expected))
  const sums = new Uint32Array(new SharedArrayBuffer(expected * 4))
  copies.set(ledger.copies)
  sums.set(ledger.sums)
  const threads = Math.max(1, Math.min(availableParallelism(), Math.ceil(expected / 100_000)))
  const step = Math.ceil(expected / threads)
  const ranges = Array.from({ length: threads }, (_, i) => ({
    copies,
    sums,
    from: i * step,
    to: Math.min(expected, (i + 1) * step),
  }))
  const results = await Promise.all(ranges.map(runThread))
  let missing = 0
  let mismatched = 0
  const missingIds: number[] = []
  for (const r of results) {
    missing += r.missing
    mismatched += r.mismatched
    missingIds.push(...r.missingIds)
  }
  return {
    expected,
    unique: ledger.unique,
    missing,
    duplicates: ledger.received - ledger.unique,
    corrupted: mismatched + ledger.conflicting + ledger.invalid,
    missingIds: missingIds.slice(0, MISSING_IDS_SHOWN),
    ms: performance.now() - startedAt,
  }
}

/** The check of one range (run by verify-thread.ts). */
export function checkRange({ copies, sums, from, to }: RangeCheck): RangeResult {
  let missing = 0
  let mismatched = 0
  const missingIds: number[] = []
  for (let id = from; id < to; id++) {
    if (copies[id] === 0) {
      missing++
      if (missingIds.length < MISSING_IDS_SHOWN) missingIds.push(id)
    } else if (sums[id] !== checksum(JSON.stringify(makeEvent(id)))) mismatched++
  }
  return { missing, mismatched, missingIds }
}

function runThread(range: RangeCheck): Promise<RangeResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./verify-thread.js', import.meta.url), {
      workerData: range,
      name: 'vinequeue-demo-verify',
    })
    worker.once('message', resolve)
    worker.once('error', reject)
    worker.once('exit', (code) => reject(new Error(`verify thread exited with code ${code}`)))
  })
}

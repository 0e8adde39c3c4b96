import { readFileSync } from 'node:fs'

// Knobs and helpers shared by the kill -9 tests (crash.test.ts, crash-rotation.test.ts,
// crash-duplicates.regression.test.ts):
//
//   VINEQUEUE_CRASH_RUNS=500   iterations per crash test (default: each test's own)
//   VINEQUEUE_CRASH_SEED=1234  replays the kill moments and kill points of a failed run
//
// e.g., after a build (`npx -y pnpm@10.34.9 -s build`):
//   VINEQUEUE_CRASH_RUNS=500 npx vitest run packages/core/test/wal/crash.test.ts packages/core/test/wal/crash-rotation.test.ts
// (about 12 minutes on 2 cores). A failure names its seed and iteration; replay it with
// the same VINEQUEUE_CRASH_SEED and at least that many runs.

/** Iterations for a crash test: VINEQUEUE_CRASH_RUNS, else `fallback`. */
export function crashRuns(fallback: number): number {
  const env = process.env.VINEQUEUE_CRASH_RUNS
  if (env === undefined || env === '') return fallback
  const runs = Number(env)
  if (!Number.isInteger(runs) || runs < 1)
    throw new RangeError(`VINEQUEUE_CRASH_RUNS: not a positive integer: ${env}`)
  return runs
}

/** VINEQUEUE_CRASH_SEED, else a fresh one (printed with every failure). */
export function crashSeed(): number {
  const env = process.env.VINEQUEUE_CRASH_SEED
  return env ? Number(env) >>> 0 : (Math.random() * 2 ** 32) >>> 0
}

/** A small seeded PRNG (mulberry32): `next()` in [0, 1), `int(lo, hi)` inclusive. */
export function prng(seed: number): { next(): number; int(lo: number, hi: number): number } {
  let a = seed >>> 0
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
  return { next, int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)) }
}

/** An item as the crash children's sinks record it. */
export interface CrashItem {
  n: number
  pad: string
}

/** The JSON lines of `file` that `complete` accepts (none if it does not exist yet). */
export function readLines<T>(file: string, complete: (line: string) => boolean): T[] {
  let text = ''
  try {
    text = readFileSync(file, 'utf8')
  } catch {}
  // The last line may be cut by the kill.
  return text
    .split('\n')
    .filter(complete)
    .map((line) => JSON.parse(line) as T)
}

/** The items a sink recorded in `file`, one JSON line each. */
export function readItems(file: string): CrashItem[] {
  return readLines<CrashItem>(file, (line) => line.endsWith('}'))
}

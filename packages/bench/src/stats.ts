/** Median of a list of numbers (mean of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  const s = [...values].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/** Nearest-rank percentile (p in 0–100) of `sorted`, ascending. */
export function percentileOfSorted(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!
}

/**
 * Runs every subject once per round, reversing the order every other round so
 * that no subject always runs first (warm caches, JIT, a quiet machine) or
 * last; `afterRound` is called with the round number (1-based).
 */
export async function interleave(
  rounds: number,
  subjects: ReadonlyArray<() => Promise<void> | void>,
  afterRound?: (round: number) => void,
): Promise<void> {
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? subjects : [...subjects].reverse()
    for (const run of order) await run()
    afterRound?.(r + 1)
  }
}

/**
 * Rounds per figure: each figure is the median over this many rounds, the
 * subject and its baseline measured in every round.
 */
export const ROUNDS = 7

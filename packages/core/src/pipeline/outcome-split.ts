import type { ItemFailure } from '../sender/types.ts'
import type { ErrorInfo } from './protocol.ts'

/** Items of one batch that are dead-lettered for the same reason (ascending indexes). */
export interface DeadLetterGroup {
  readonly reason: string
  readonly indexes: readonly number[]
}

/**
 * What one attempt's outcome means for its batch:
 * - `delivered`: every item settled;
 * - `failed`: the whole batch failed, for good (`permanent`) or to be retried;
 * - `partial`: some items failed; `delivered` counts the others, `deadLetters`
 *   holds the permanent failures grouped by reason, `retry` the indexes to
 *   send again (possibly none: the batch then settles).
 */
export type OutcomeSplit =
  | { readonly kind: 'delivered' }
  | {
      readonly kind: 'failed'
      readonly permanent: boolean
      readonly reason: string
      readonly retryAfterMs: number | undefined
    }
  | {
      readonly kind: 'partial'
      readonly delivered: number
      readonly deadLetters: readonly DeadLetterGroup[]
      readonly retry: readonly number[]
      /** The first retried item's reason (for the give-up reason if it runs out of attempts). */
      readonly retryReason: string
      /** The largest `retryAfterMs` among the retried items (undefined: none asked). */
      readonly retryAfterMs: number | undefined
    }

/**
 * Splits a send's outcome for a batch of `count` items (`error` for the whole batch, or `failed` items)
 * into what settles, what retries and what is dead-lettered. `failed` was
 * checked where the send ran (sender/outcome.ts): each index is within the
 * batch; a repeated index keeps its last entry. One dead-letter group per
 * distinct reason, so each item keeps the reason the target gave it.
 */
export function splitOutcome(
  count: number,
  failed: readonly ItemFailure[] | undefined,
  error: ErrorInfo | undefined,
): OutcomeSplit {
  if (error) {
    const permanent = error.retryable === false
    return {
      kind: 'failed',
      permanent,
      reason: permanent ? `permanent failure: ${error.message}` : `${error.name}: ${error.message}`,
      retryAfterMs: error.retryAfterMs,
    }
  }
  if (!failed || failed.length === 0) return { kind: 'delivered' }
  const byIndex = new Map<number, ItemFailure>()
  for (const f of failed) byIndex.set(f.index, f)
  const sorted = [...byIndex].sort((a, b) => a[0] - b[0])
  const byReason = new Map<string, number[]>()
  const retry: number[] = []
  let retryAfterMs: number | undefined
  for (const [index, f] of sorted) {
    if (f.retryable === false) {
      const reason = `permanent failure: ${f.reason ?? 'rejected by the sender'}`
      const group = byReason.get(reason)
      if (group) group.push(index)
      else byReason.set(reason, [index])
    } else {
      retry.push(index)
      const after = f.retryAfterMs
      if (typeof after === 'number' && after >= 0) retryAfterMs = Math.max(retryAfterMs ?? 0, after)
    }
  }
  return {
    kind: 'partial',
    delivered: count - byIndex.size,
    deadLetters: [...byReason].map(([reason, indexes]) => ({ reason, indexes })),
    retry,
    retryReason: retry.length > 0 ? (byIndex.get(retry[0]!)?.reason ?? 'item failed') : 'item failed',
    retryAfterMs,
  }
}

/**
 * Whether an outcome signals back pressure (for adaptive concurrency): the
 * whole batch failed retryably, or the target answered 429/503 for some of
 * its items.
 */
export function isBackPressure(
  failed: readonly ItemFailure[] | undefined,
  error: ErrorInfo | undefined,
): boolean {
  return (
    (error !== undefined && error.retryable !== false) ||
    (failed?.some((f) => f.retryable !== false && (f.status === 429 || f.status === 503)) ?? false)
  )
}

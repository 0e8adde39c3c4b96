/**
 * What a settled `send` means for its batch — the one place that reads a
 * sender's answer, used on the thread that ran the send: the sender pool's
 * (sender-pool/entry.ts) and the queue's own for an in-thread `send`
 * (queue/in-thread-send.ts). What leaves here is plain, checked and
 * cloneable; the dispatcher trusts it.
 */
import { type Batch, undecodableItems } from '../batch/batch-format.ts'
import { InvalidSendResultError } from '../errors.ts'
import { type ErrorInfo, errorInfo } from '../pipeline/protocol.ts'
import type { ItemFailure } from './types.ts'

/** A send's outcome: `failed` items (the rest delivered), or `error` for the whole batch. */
export interface SendOutcome {
  readonly failed?: readonly ItemFailure[]
  readonly error?: ErrorInfo
}

/** `send` resolved with `result`. */
export function resolvedOutcome(batch: Batch, result: unknown): SendOutcome {
  let checked: ItemFailure[] | string
  try {
    checked = checkSendResult(result, batch.count)
  } catch (err) {
    checked = `reading it threw (${errorInfo(err).message})`
  }
  if (typeof checked === 'string') {
    const err = new InvalidSendResultError(
      `The sender's send() returned an invalid result for batch ${batch.id} (${batch.count} items): ${checked}. ` +
        'None of its items counts as delivered: the batch is failed and retried (a sender bug: see ItemFailure in the sender contract).',
      { retryable: true },
    )
    return { error: errorInfo(err) }
  }
  if (checked.length === 0) return {}
  const undecodable = undecodableItems(batch)
  if (!undecodable) return { failed: checked }
  // An undecodable item the sender did not deliver fails the same way on every try.
  return {
    failed: checked.map((f) => {
      const why = undecodable.get(f.index)
      return why === undefined ? f : { index: f.index, retryable: false, reason: cannotDecode(why) }
    }),
  }
}

/**
 * `send` threw (or timed out). When `batch.items()` found undecodable items
 * on the way, those are failed for good and the others retried without
 * them: otherwise the batch would fail the same way forever.
 */
export function rejectedOutcome(batch: Batch, err: unknown): SendOutcome {
  const undecodable = undecodableItems(batch)
  if (!undecodable) return { error: errorInfo(err) }
  const { message } = errorInfo(err)
  const failed: ItemFailure[] = []
  for (let index = 0; index < batch.count; index++) {
    const why = undecodable.get(index)
    failed.push(
      why === undefined
        ? { index, reason: `retried without the batch's undecodable items (the send failed: ${message})` }
        : { index, retryable: false, reason: cannotDecode(why) },
    )
  }
  return { failed }
}

function cannotDecode(why: string): string {
  return `the item cannot be decoded (${why})`
}

const FAILURE_FIELDS: ReadonlySet<string> = new Set([
  'index',
  'retryable',
  'reason',
  'status',
  'retryAfterMs',
])

/**
 * The item failures of a send's result, checked against the contract
 * (sender/types.ts) and copied field by field; or what is wrong with it.
 * Allowed: undefined, null, or an object whose `failed` is undefined or an
 * array of distinct `{ index }` (integer, 0 ≤ index < count) with optional
 * `retryable` (boolean), `reason` (string), `status` (finite number) and
 * `retryAfterMs` (finite number ≥ 0). Other fields are ignored.
 */
export function checkSendResult(result: unknown, count: number): ItemFailure[] | string {
  if (result === undefined || result === null) return []
  if (typeof result !== 'object' || Array.isArray(result)) {
    return `expected nothing or { failed: [...] }, got ${describe(result)}`
  }
  const failed = (result as { failed?: unknown }).failed
  if (failed === undefined) return []
  if (!Array.isArray(failed)) return `failed must be an array, got ${describe(failed)}`
  const out: ItemFailure[] = []
  const seen = new Set<number>()
  for (let i = 0; i < failed.length; i++) {
    const f: unknown = failed[i]
    const at = `failed[${i}]`
    if (typeof f !== 'object' || f === null || Array.isArray(f)) {
      return `${at} must be an object { index, … }, got ${describe(f)}`
    }
    const e = f as Record<string, unknown>
    const index = e.index
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= count) {
      return `${at}.index must be an integer from 0 to ${count - 1} (the batch's items), got ${describe(index)}`
    }
    if (seen.has(index)) return `${at}.index ${index} is listed twice`
    seen.add(index)
    if (e.retryable !== undefined && typeof e.retryable !== 'boolean') {
      return `${at}.retryable must be a boolean, got ${describe(e.retryable)}`
    }
    if (e.reason !== undefined && typeof e.reason !== 'string') {
      return `${at}.reason must be a string, got ${describe(e.reason)}`
    }
    if (e.status !== undefined && (typeof e.status !== 'number' || !Number.isFinite(e.status))) {
      return `${at}.status must be a finite number, got ${describe(e.status)}`
    }
    if (
      e.retryAfterMs !== undefined &&
      (typeof e.retryAfterMs !== 'number' || !Number.isFinite(e.retryAfterMs) || e.retryAfterMs < 0)
    ) {
      return `${at}.retryAfterMs must be a finite number ≥ 0, got ${describe(e.retryAfterMs)}`
    }
    const copy: { -readonly [K in keyof ItemFailure]: ItemFailure[K] } = { index }
    for (const key of FAILURE_FIELDS) {
      if (key !== 'index' && e[key] !== undefined) (copy as Record<string, unknown>)[key] = e[key]
    }
    out.push(copy)
  }
  return out
}

function describe(v: unknown): string {
  if (v === undefined) return 'undefined'
  if (v === null) return 'null'
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint')
    return `${typeof v} ${String(v)}`
  if (typeof v === 'function') return 'a function'
  if (Array.isArray(v)) return `an array of ${v.length}`
  if (typeof v === 'object') return `an object with keys ${JSON.stringify(Object.keys(v).slice(0, 5))}`
  return typeof v
}

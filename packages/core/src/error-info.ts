/**
 * Errors across threads. Structured clone keeps an Error's message and name
 * but not its class, its own fields (`code`, `retryable`, …) nor its brand,
 * so every boundary (sender thread → pipeline → host) carries an ErrorInfo
 * summary and the receiver rebuilds it with errorFromInfo: a VineQueue error
 * comes back as its own class, a `WalError` as a `WalError` (its code kept),
 * anything else as an Error with the name, message and `code` it had.
 */
// The errors module alone, not @vinequeue/wal's index: the host thread never opens a log.
import { WalError, type WalErrorCode, WalErrorCodes } from '@vinequeue/wal/errors'
import { errorClassForCode } from './errors.ts'

/** A serialisable error summary. */
export interface ErrorInfo {
  readonly name: string
  readonly message: string
  readonly code?: string
  readonly retryable?: boolean
  readonly status?: number
  readonly retryAfterMs?: number
  /** The target cannot be reached as configured (SendError `misconfigured`). */
  readonly misconfigured?: boolean
  /** The sender module a load failure is about. */
  readonly module?: string
  /** InvalidConfigError: every bad option. */
  readonly issues?: readonly string[]
  /** SendTimeoutError, StartTimeoutError. */
  readonly timeoutMs?: number
  /** A system error's call and path (ENOSPC on a write, …); DeadLetterFileError's file. */
  readonly syscall?: string
  readonly path?: string
  /** The error this one wraps. */
  readonly cause?: ErrorInfo
}

/** Causes carried below the error itself: enough for "start failed ← sender refused ← its check". */
const MAX_CAUSE_DEPTH = 3

export function errorInfo(err: unknown, depth = 0): ErrorInfo {
  if (err && typeof err === 'object') {
    const e = err as Record<string, unknown>
    return {
      name: typeof e.name === 'string' ? e.name : 'Error',
      message: typeof e.message === 'string' ? e.message : String(err),
      ...(typeof e.code === 'string' ? { code: e.code } : {}),
      ...(typeof e.retryable === 'boolean' ? { retryable: e.retryable } : {}),
      ...(typeof e.status === 'number' ? { status: e.status } : {}),
      ...(typeof e.retryAfterMs === 'number' && e.retryAfterMs >= 0 ? { retryAfterMs: e.retryAfterMs } : {}),
      ...(e.misconfigured === true ? { misconfigured: true } : {}),
      ...(typeof e.module === 'string' ? { module: e.module } : {}),
      ...(Array.isArray(e.issues) && e.issues.every((i) => typeof i === 'string')
        ? { issues: [...(e.issues as string[])] }
        : {}),
      ...(typeof e.timeoutMs === 'number' ? { timeoutMs: e.timeoutMs } : {}),
      ...(typeof e.syscall === 'string' ? { syscall: e.syscall } : {}),
      ...(typeof e.path === 'string' ? { path: e.path } : {}),
      ...(e.cause && typeof e.cause === 'object' && depth < MAX_CAUSE_DEPTH
        ? { cause: errorInfo(e.cause, depth + 1) }
        : {}),
    }
  }
  return { name: 'Error', message: String(err) }
}

const WAL_CODES: ReadonlySet<string> = new Set(Object.values(WalErrorCodes))

/** Fields of an ErrorInfo that are the error's own, set again on the rebuilt error. */
const EXTRA_FIELDS = [
  'retryable',
  'status',
  'retryAfterMs',
  'misconfigured',
  'module',
  'issues',
  'timeoutMs',
  'syscall',
  'path',
] as const

/** The error `info` summarises, rebuilt on this thread as its own class (see the header). */
export function errorFromInfo(info: ErrorInfo): Error {
  const options = info.cause ? { cause: errorFromInfo(info.cause) } : undefined
  let err: Error
  const Cls = info.code === undefined ? undefined : errorClassForCode(info.code)
  if (Cls) err = new Cls(info.message, options)
  else if (info.code !== undefined && WAL_CODES.has(info.code)) {
    err = new WalError(info.code as WalErrorCode, info.message, options)
  } else {
    err = new Error(info.message, options)
    err.name = info.name
    if (info.code !== undefined) Object.assign(err, { code: info.code })
  }
  for (const key of EXTRA_FIELDS) {
    if (info[key] !== undefined)
      Object.defineProperty(err, key, {
        value: info[key],
        enumerable: true,
        writable: true,
        configurable: true,
      })
  }
  return err
}

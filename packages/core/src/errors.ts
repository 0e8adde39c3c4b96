/**
 * Every error @vinequeue/core throws. One base class, one stable `code` per
 * failure, a `Symbol.for` brand so `isVineQueueError` works across duplicate
 * installs and on errors rebuilt after crossing a thread boundary.
 */

export const ErrorCodes = {
  QUEUE_CLOSED: 'VQ_QUEUE_CLOSED',
  QUEUE_FULL: 'VQ_QUEUE_FULL',
  BACKPRESSURE: 'VQ_BACKPRESSURE',
  CIRCUIT_OPEN: 'VQ_CIRCUIT_OPEN',
  ITEM_TOO_LARGE: 'VQ_ITEM_TOO_LARGE',
  ENCODE: 'VQ_ENCODE',
  INVALID_CONFIG: 'VQ_INVALID_CONFIG',
  SEND_FAILED: 'VQ_SEND_FAILED',
  SEND_TIMEOUT: 'VQ_SEND_TIMEOUT',
  PIPELINE_DOWN: 'VQ_PIPELINE_DOWN',
  NOT_STARTED: 'VQ_NOT_STARTED',
  START_TIMEOUT: 'VQ_START_TIMEOUT',
  SENDER_LOAD: 'VQ_SENDER_LOAD',
  DEAD_LETTER_FILE: 'VQ_DEAD_LETTER_FILE',
  INVALID_SEND_RESULT: 'VQ_INVALID_SEND_RESULT',
  DECODE: 'VQ_DECODE',
  INVALID_ARGUMENT: 'VQ_INVALID_ARGUMENT',
} as const

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes]

const kBrand: unique symbol = Symbol.for('vinequeue.error')

export class VineQueueError extends Error {
  readonly code: ErrorCode

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = 'VineQueueError'
    Object.defineProperty(this, kBrand, { value: true })
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return isVineQueueError(value)
  }
}

/** True for any VineQueue error, including ones from another copy of the package. */
export function isVineQueueError(value: unknown): value is VineQueueError {
  return typeof value === 'object' && value !== null && (value as any)[kBrand] === true
}

type ErrorClass<Extra> = new (
  message: string,
  options?: { cause?: unknown } & Extra,
) => VineQueueError & Readonly<Extra>

/**
 * Builds one error class. `instanceof` on the result checks the brand and the
 * code, so it also holds for an error rebuilt on another thread.
 */
function defineError<Extra extends object = {}>(code: ErrorCode, name: string): ErrorClass<Extra> {
  const cls = class extends VineQueueError {
    constructor(message: string, options?: { cause?: unknown } & Extra) {
      super(code, message, options)
      this.name = name
      if (options) {
        for (const key of Object.keys(options)) {
          if (key !== 'cause') (this as any)[key] = (options as any)[key]
        }
      }
    }

    static override [Symbol.hasInstance](value: unknown): boolean {
      return isVineQueueError(value) && value.code === code
    }
  }
  Object.defineProperty(cls, 'name', { value: name })
  return cls as unknown as ErrorClass<Extra>
}

/** enqueue after stop() began, or after the pipeline thread died (`reason: 'down'`). */
export const QueueClosedError: ErrorClass<{ reason?: 'stopped' | 'down' }> = defineError<{
  reason?: 'stopped' | 'down'
}>(ErrorCodes.QUEUE_CLOSED, 'QueueClosedError')
export type QueueClosedError = InstanceType<typeof QueueClosedError>

/** The ring reached its hard limit and the policy says not to wait or drop. */
export const QueueFullError: ErrorClass<{}> = defineError(ErrorCodes.QUEUE_FULL, 'QueueFullError')
export type QueueFullError = InstanceType<typeof QueueFullError>

/** An async enqueue waited `maxBlockMs` for room and none came. */
export const BackpressureError: ErrorClass<{ waitedMs?: number }> = defineError<{ waitedMs?: number }>(
  ErrorCodes.BACKPRESSURE,
  'BackpressureError',
)
export type BackpressureError = InstanceType<typeof BackpressureError>

/**
 * Thrown by enqueue while the circuit breaker is not closed, when
 * `circuitBreaker.whileOpen` is `'reject'`.
 */
export const CircuitOpenError: ErrorClass<{}> = defineError(ErrorCodes.CIRCUIT_OPEN, 'CircuitOpenError')
export type CircuitOpenError = InstanceType<typeof CircuitOpenError>

/** An encoded item is larger than `maxItemBytes`. */
export const ItemTooLargeError: ErrorClass<{ size?: number; limit?: number }> = defineError<{
  size?: number
  limit?: number
}>(ErrorCodes.ITEM_TOO_LARGE, 'ItemTooLargeError')
export type ItemTooLargeError = InstanceType<typeof ItemTooLargeError>

/**
 * An item cannot be taken: msgpack cannot encode it (circular structure,
 * symbol, BigInt over 64 bits), it is nested deeper than the queue's
 * decoders tolerate, or (`strictItems`) it would not come back as the same
 * data.
 */
export const EncodeError: ErrorClass<{}> = defineError(ErrorCodes.ENCODE, 'EncodeError')
export type EncodeError = InstanceType<typeof EncodeError>

/** One or more options are invalid; `issues` lists every one of them. */
export const InvalidConfigError: ErrorClass<{ issues?: readonly string[] }> = defineError<{
  issues?: readonly string[]
}>(ErrorCodes.INVALID_CONFIG, 'InvalidConfigError')
export type InvalidConfigError = InstanceType<typeof InvalidConfigError>

/**
 * A sender failed a batch. `retryable: false` sends the items to the dead-letter
 * path instead of retrying; `status` carries a protocol status when there is one;
 * `retryAfterMs` (e.g. from HTTP `Retry-After`) sets the least delay before the
 * retry (capped by `retryMaxDelayMs`). `misconfigured: true` says the target
 * cannot be reached as configured (e.g. its TLS certificate does not verify):
 * the items are kept and retried, but the circuit opens at once, an `error`
 * event reports it and `health()` is down until a send succeeds.
 */
export const SendError: ErrorClass<{
  retryable?: boolean
  status?: number
  retryAfterMs?: number
  misconfigured?: boolean
}> = defineError<{
  retryable?: boolean
  status?: number
  retryAfterMs?: number
  misconfigured?: boolean
}>(ErrorCodes.SEND_FAILED, 'SendError')
export type SendError = InstanceType<typeof SendError>

/** A send did not settle within `sendTimeoutMs`; the batch is retried. */
export const SendTimeoutError: ErrorClass<{ timeoutMs?: number }> = defineError<{ timeoutMs?: number }>(
  ErrorCodes.SEND_TIMEOUT,
  'SendTimeoutError',
)
export type SendTimeoutError = InstanceType<typeof SendTimeoutError>

/** The pipeline thread died; the queue is down. */
export const PipelineDownError: ErrorClass<{}> = defineError(ErrorCodes.PIPELINE_DOWN, 'PipelineDownError')
export type PipelineDownError = InstanceType<typeof PipelineDownError>

/** flush() or drain() before start(): nothing runs yet that could flush. */
export const NotStartedError: ErrorClass<{}> = defineError(ErrorCodes.NOT_STARTED, 'NotStartedError')
export type NotStartedError = InstanceType<typeof NotStartedError>

/**
 * start() did not finish within `startTimeoutMs` (e.g. a sender factory that
 * never settles); the threads it started are shut down.
 */
export const StartTimeoutError: ErrorClass<{ timeoutMs?: number }> = defineError<{ timeoutMs?: number }>(
  ErrorCodes.START_TIMEOUT,
  'StartTimeoutError',
)
export type StartTimeoutError = InstanceType<typeof StartTimeoutError>

/**
 * The sender module could not be loaded (not found, a syntax error, no
 * factory) or its factory failed for a reason other than its options;
 * `module` names it and `cause` is the original error.
 */
export const SenderLoadError: ErrorClass<{ module?: string }> = defineError<{ module?: string }>(
  ErrorCodes.SENDER_LOAD,
  'SenderLoadError',
)
export type SenderLoadError = InstanceType<typeof SenderLoadError>

/**
 * Writing `deadLetterFile` failed (ENOSPC, EIO, …). The items were still
 * handed to `onDeadLetter` and the `deadLetter` event (`items`, `count`); the
 * queue keeps running and tries the file again with the next dead letter.
 */
export const DeadLetterFileError: ErrorClass<{ path?: string; count?: number }> = defineError<{
  path?: string
  count?: number
}>(ErrorCodes.DEAD_LETTER_FILE, 'DeadLetterFileError')
export type DeadLetterFileError = InstanceType<typeof DeadLetterFileError>
/**
 * A sender's `send` returned something the contract does not allow (not
 * nothing, not `{ failed?: ItemFailure[] }`, or an entry of `failed` with a
 * bad `index`, a duplicate index or a field of the wrong type). A sender bug:
 * the batch is failed (retryably) and this error is emitted as an `error`
 * event; nothing of the batch counts as delivered.
 */
export const InvalidSendResultError: ErrorClass<{ retryable?: boolean }> = defineError<{
  retryable?: boolean
}>(ErrorCodes.INVALID_SEND_RESULT, 'InvalidSendResultError')
export type InvalidSendResultError = InstanceType<typeof InvalidSendResultError>

/**
 * `batch.items()` found items it cannot decode (`indexes`; e.g. written by
 * an older version, or nested too deep for this thread's stack). Thrown to
 * the sender; when the send then fails, those items are dead-lettered with
 * their raw bytes and the others retried without them.
 */
export const ItemDecodeError: ErrorClass<{ indexes?: readonly number[] }> = defineError<{
  indexes?: readonly number[]
}>(ErrorCodes.DECODE, 'ItemDecodeError')
export type ItemDecodeError = InstanceType<typeof ItemDecodeError>

/**
 * A method was called with an argument it cannot take (`enqueueRaw` without
 * bytes, `enqueueBatch` without an array, `stop({ timeoutMs: -1 })`, a
 * `connectProducer` handle that is none). A `TypeError` (as Node's own
 * argument errors are) that is also a `VineQueueError`: the same brand and a
 * stable `code`.
 */
export class InvalidArgumentError extends TypeError {
  readonly code: ErrorCode = ErrorCodes.INVALID_ARGUMENT

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'InvalidArgumentError'
    Object.defineProperty(this, kBrand, { value: true })
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return isVineQueueError(value) && value.code === ErrorCodes.INVALID_ARGUMENT
  }
}

const CLASSES_BY_CODE: ReadonlyMap<string, ErrorClass<object>> = new Map<string, ErrorClass<object>>([
  [ErrorCodes.QUEUE_CLOSED, QueueClosedError],
  [ErrorCodes.QUEUE_FULL, QueueFullError],
  [ErrorCodes.BACKPRESSURE, BackpressureError],
  [ErrorCodes.CIRCUIT_OPEN, CircuitOpenError],
  [ErrorCodes.ITEM_TOO_LARGE, ItemTooLargeError],
  [ErrorCodes.ENCODE, EncodeError],
  [ErrorCodes.INVALID_CONFIG, InvalidConfigError],
  [ErrorCodes.SEND_FAILED, SendError],
  [ErrorCodes.SEND_TIMEOUT, SendTimeoutError],
  [ErrorCodes.PIPELINE_DOWN, PipelineDownError],
  [ErrorCodes.NOT_STARTED, NotStartedError],
  [ErrorCodes.START_TIMEOUT, StartTimeoutError],
  [ErrorCodes.SENDER_LOAD, SenderLoadError],
  [ErrorCodes.DEAD_LETTER_FILE, DeadLetterFileError],
  [ErrorCodes.INVALID_SEND_RESULT, InvalidSendResultError],
  [ErrorCodes.DECODE, ItemDecodeError],
  [ErrorCodes.INVALID_ARGUMENT, InvalidArgumentError as unknown as ErrorClass<object>],
])

/**
 * The class of a VineQueue error code (undefined for any other code): how an
 * error that crossed a thread as a summary is rebuilt as what it was.
 */
export function errorClassForCode(code: string): ErrorClass<object> | undefined {
  return CLASSES_BY_CODE.get(code)
}

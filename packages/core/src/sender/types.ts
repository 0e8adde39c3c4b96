import type { Batch } from '../batch/batch-format.ts'

/** Passed to every `send` call. */
export interface SendContext {
  /**
   * Aborted when the send exceeds `sendTimeoutMs`; the send then counts as
   * failed (a timeout, retried) whether or not it settles. (A pool thread
   * whose event loop is stuck is terminated by the watchdog a second later;
   * every pool thread is when stop() runs out of time.)
   */
  readonly signal: AbortSignal
  /** 1 for the first try of this batch, then 2, 3, … */
  readonly attempt: number
}

/** One item a sender could not deliver. */
export interface ItemFailure {
  /** Index of the item in `batch.items()` / `batch.payloads()`. */
  readonly index: number
  /** false: the item goes to dead letters instead of being retried. Default true. */
  readonly retryable?: boolean
  /** Why, for dead letters and events. */
  readonly reason?: string
  /** Target status (HTTP status, Kafka error code), when there is one. */
  readonly status?: number
  /** Least delay before this item is retried (ms), e.g. from HTTP `Retry-After`. */
  readonly retryAfterMs?: number
}

/**
 * What a send returns. Nothing (or `{ failed: [] }`) means every item was
 * delivered. Throwing fails the whole batch: retried unless the error has
 * `retryable: false` (e.g. `new SendError(msg, { retryable: false })`).
 */
// biome-ignore lint/suspicious/noConfusingVoidType: `async send() {}` (no return) must type-check
export type SendResult = void | undefined | { readonly failed?: readonly ItemFailure[] }

/** Delivers batches to a target. */
export interface Sender {
  send(batch: Batch, context: SendContext): SendResult | Promise<SendResult>
  /**
   * Called once per sender thread when the queue stops, after that thread's
   * last send settled (or timed out): flush and close connections and files.
   * Bounded by what is left of stop()'s timeout; a close that throws is
   * reported as a `senderCloseError` event and does not fail stop().
   */
  close?(): void | Promise<void>
}

/**
 * A sender module's default export: builds the sender once per sender
 * thread from the cloneable `options` given in the queue's `sender` option.
 */
export type SenderFactory<Options = unknown> = (options: Options) => Sender | Promise<Sender>

/** Types a sender module's default export; returns `factory` unchanged. */
export function defineSender<Options = unknown>(factory: SenderFactory<Options>): SenderFactory<Options> {
  return factory
}

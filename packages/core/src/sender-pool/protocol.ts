/**
 * Tasks between the pipeline thread and the sender pool (piscina). A batch
 * is not copied: the task names a shared slab that the sender reads in place.
 */

import type { ErrorInfo } from '../pipeline/protocol.ts'
import type { ItemFailure } from '../sender/types.ts'

export interface SenderPoolWorkerData {
  readonly module: string
  readonly options: unknown
  /** The sender's own deadline; the pipeline terminates the thread a little later. */
  readonly sendTimeoutMs: number
  /**
   * BroadcastChannel name on which the pipeline asks every sender thread to
   * close its sender (piscina has no per-thread shutdown hook). Which
   * threads built one is in the watchdog table.
   */
  readonly closeChannel: string
  /** Heartbeat table (watchdog.ts): how the pipeline finds a thread whose event loop is stuck. */
  readonly watchdog: SharedArrayBuffer
}

/** On the close channel: pipeline → every sender thread. */
export interface SenderCloseRequest {
  readonly __vq: 1
  readonly type: 'close'
}

/** On the close channel: each sender thread → pipeline, once its sender's close() settled. */
export interface SenderCloseReply {
  readonly __vq: 1
  readonly type: 'closed'
  readonly threadId: number
  readonly error?: ErrorInfo
}

export type SenderTask =
  | { readonly __vq: 1; readonly type: 'ping' }
  | {
      readonly __vq: 1
      readonly type: 'send'
      readonly slab: SharedArrayBuffer
      readonly byteOffset: number
      readonly byteLength: number
      readonly count: number
      /** `batch.id` and `batch.key` (flight.ts). */
      readonly batchId: number
      readonly batchKey: string
      readonly attempt: number
    }

export type SenderTaskResult =
  | { readonly __vq: 1; readonly type: 'pong' }
  | { readonly __vq: 1; readonly type: 'sent'; readonly failed?: readonly ItemFailure[] }
  | { readonly __vq: 1; readonly type: 'failed'; readonly error: ErrorInfo }
  /** The thread could not build its sender: every task gets this (start() rejects with it). */
  | { readonly __vq: 1; readonly type: 'loadFailed'; readonly error: ErrorInfo }

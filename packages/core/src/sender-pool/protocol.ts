/**
 * Messages of a sender thread. The queue's thread starts the sender threads
 * (queue/sender-threads.ts) and gives each one end of a MessageChannel; the
 * pipeline thread holds the other end (pipeline/pool-transport.ts) and sends
 * tasks on it. A batch is not copied: the task names a shared slab that the
 * sender reads in place. Whether the thread built its sender goes to the
 * queue's thread (its parent port): start() waits for it there.
 */

import { fileURLToPath } from 'node:url'
import type { MessagePort } from 'node:worker_threads'
import type { ErrorInfo } from '../pipeline/protocol.ts'
import type { ItemFailure } from '../sender/types.ts'

/** What every sender thread of a queue shares: the module and its options, the deadline, the close channel, the watchdog table. */
export interface SenderPoolShared {
  readonly module: string
  readonly options: unknown
  /** The sender's own deadline; the pipeline has the thread terminated a little later. */
  readonly sendTimeoutMs: number
  /**
   * BroadcastChannel name on which the pipeline asks every sender thread to
   * close its sender. Which threads built one is in the watchdog table.
   */
  readonly closeChannel: string
  /** Heartbeat table (watchdog.ts): how the pipeline finds a thread whose event loop is stuck. */
  readonly watchdog: SharedArrayBuffer
}

/** A sender thread's workerData: the shared part and its own end of the channel to the pipeline. */
export interface SenderThreadData extends SenderPoolShared {
  readonly port: MessagePort
}

/** A started sender thread as the pipeline thread knows it. */
export interface SenderThreadPort {
  readonly threadId: number
  readonly port: MessagePort
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

/** Pipeline → sender thread: one attempt of a batch. */
export interface SenderTask {
  readonly __vq: 1
  readonly type: 'send'
  /** The task's number on this pipeline (its reply names it). */
  readonly task: number
  readonly slab: SharedArrayBuffer
  readonly byteOffset: number
  readonly byteLength: number
  readonly count: number
  /** `batch.id` and `batch.key` (flight.ts). */
  readonly batchId: number
  readonly batchKey: string
  readonly attempt: number
}

/** A send's answer. */
export type SendReply =
  | { readonly type: 'sent'; readonly failed?: readonly ItemFailure[] }
  | { readonly type: 'failed'; readonly error: ErrorInfo }

/** Sender thread → queue's thread (its parent port), once the thread has tried to build its sender. */
export type SenderThreadStatus =
  /** The thread built its sender (before any reply). */
  | { readonly __vq: 1; readonly type: 'built' }
  /** The thread could not build its sender: start() rejects with the first such error; its tasks fail with it. */
  | { readonly __vq: 1; readonly type: 'loadFailed'; readonly error: ErrorInfo }

/** Sender thread → pipeline. */
export type SenderThreadMessage =
  | { readonly __vq: 1; readonly type: 'reply'; readonly task: number; readonly reply: SendReply }
  /** Thrown outside any send (an uncaught exception or rejection): the thread ends right after this. */
  | { readonly __vq: 1; readonly type: 'crashed'; readonly error: ErrorInfo }

/** How errors name a sender module: a `file:` URL as its path, anything else as given. */
export function senderModulePath(module: string): string {
  return module.startsWith('file:') ? fileURLToPath(module) : module
}

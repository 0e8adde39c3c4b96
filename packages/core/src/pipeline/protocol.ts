/**
 * Messages between the queue's thread (host) and the pipeline thread. Every
 * message carries `__vq: 1`; the receivers switch exhaustively on `type`.
 */
import type { ErrorInfo } from '../error-info.ts'
import type { PipelineOptionKey } from '../queue/option-table.ts'
import type { ResolvedOptions } from '../queue/types.ts'
import type { ItemFailure } from '../sender/types.ts'
import type { SenderPoolShared, SenderThreadPort } from '../sender-pool/protocol.ts'

export type { ErrorInfo } from '../error-info.ts'
export { errorInfo } from '../error-info.ts'

/**
 * The options the pipeline thread needs: all cloneable (no functions). Which
 * they are is the `pipeline` column of the options table (queue/option-table.ts).
 * `sender` undefined means batches go to the host's in-thread `send`.
 */
export type PipelineConfig = Pick<ResolvedOptions, PipelineOptionKey>

export interface PipelineWorkerData {
  readonly control: SharedArrayBuffer
  readonly metrics: SharedArrayBuffer
  readonly lanes: readonly SharedArrayBuffer[]
  readonly config: PipelineConfig
  /**
   * 128 random bits in hex, new at every start(): the scope of `batch.key`
   * for batches the log does not hold. Made on the queue's thread, which
   * has node:crypto loaded already (loading it would cost this thread's
   * start-up about 3 ms).
   */
  readonly runId: string
  /** Module senders: the sender threads the queue's thread started beside this one (their ports are transferred). */
  readonly senders?: {
    readonly shared: SenderPoolShared
    readonly threads: readonly SenderThreadPort[]
  }
}

export type HostToPipeline =
  | { readonly __vq: 1; readonly type: 'addLane'; readonly lane: SharedArrayBuffer }
  | { readonly __vq: 1; readonly type: 'flush'; readonly id: number; readonly drain: boolean }
  /** start() has resolved (the log open, a sender built): the pipeline may drain. */
  | { readonly __vq: 1; readonly type: 'started' }
  | { readonly __vq: 1; readonly type: 'stop'; readonly timeoutMs: number }
  /** A sender thread started in place of one that exited (its port is transferred). */
  | { readonly __vq: 1; readonly type: 'senderThread'; readonly thread: SenderThreadPort }
  | {
      readonly __vq: 1
      readonly type: 'sendResult'
      readonly batchId: number
      readonly attempt: number
      readonly failed?: readonly ItemFailure[]
      readonly error?: ErrorInfo
      /** The in-thread send is still running (it timed out): do not reuse its slab. */
      readonly abandoned?: boolean
    }

export type PipelineToHost =
  /** The files start() depends on are open (start-up.ts); the pipeline's code loads next. */
  | { readonly __vq: 1; readonly type: 'ready' }
  | { readonly __vq: 1; readonly type: 'flushed'; readonly id: number }
  | {
      readonly __vq: 1
      readonly type: 'send'
      /** The cut id: the answer (`sendResult`) names it. */
      readonly batchId: number
      /** What the sender sees as `batch.id` and `batch.key` (flight.ts). */
      readonly id: number
      readonly key: string
      readonly attempt: number
      readonly slab: SharedArrayBuffer
      readonly count: number
      readonly byteLength: number
    }
  | {
      readonly __vq: 1
      readonly type: 'deadLetter'
      readonly bytes: Uint8Array
      readonly count: number
      readonly reason: string
      readonly attempts: number
    }
  | { readonly __vq: 1; readonly type: 'backpressure'; readonly active: boolean }
  | { readonly __vq: 1; readonly type: 'circuit'; readonly state: 'closed' | 'open' | 'half-open' }
  | {
      readonly __vq: 1
      readonly type: 'wal'
      readonly event: 'recovered' | 'full' | 'room' | 'error' | 'condition'
      /** recovered: items re-delivered from before the start; error: what failed. */
      readonly items?: number
      readonly ms?: number
      readonly error?: ErrorInfo
      /** condition: which one (wal-stage.ts WalCondition), its status (undefined: over) and why. */
      readonly condition?: 'stalled' | 'io' | 'ack' | 'damage'
      readonly status?: 'degraded' | 'down'
      readonly reason?: string
    }
  | { readonly __vq: 1; readonly type: 'newSlab'; readonly uid: number; readonly slab: SharedArrayBuffer }
  | { readonly __vq: 1; readonly type: 'retiredSlab'; readonly uid: number }
  | {
      readonly __vq: 1
      readonly type: 'stopped'
      readonly leftovers: Uint8Array
      readonly count: number
      readonly timedOut: boolean
      /** Items left in the WAL for the next start (0 without a WAL). */
      readonly walPendingItems: number
    }
  | { readonly __vq: 1; readonly type: 'senderCloseError'; readonly error: ErrorInfo }
  /** The watchdog found this sender thread's event loop stuck: the queue's thread terminates (and replaces) it. */
  | { readonly __vq: 1; readonly type: 'terminateSender'; readonly threadId: number }
  /** A send failed `misconfigured` (first of a run), or — no error — one succeeded after such a run. */
  | { readonly __vq: 1; readonly type: 'misconfigured'; readonly error?: ErrorInfo }
  | {
      readonly __vq: 1
      readonly type: 'deadLetterFile'
      readonly path: string
      /** The write failure; absent once every kept line is written. */
      readonly error?: ErrorInfo
      /** Dead-lettered items kept for the file, not written yet. */
      readonly pendingItems: number
      /** Items of the failed write not kept for the file (memory bound). */
      readonly notKept?: number
    }
  /** A send returned a result the sender contract does not allow (the batch is retried). */
  | { readonly __vq: 1; readonly type: 'invalidSendResult'; readonly error: ErrorInfo }
  | { readonly __vq: 1; readonly type: 'fatal'; readonly error: ErrorInfo }

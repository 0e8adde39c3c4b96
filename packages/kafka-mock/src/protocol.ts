/**
 * Messages between the harness (cluster.ts, in the test or bench process)
 * and the mock cluster's process (child/entry.ts), over the child_process IPC
 * channel. Every message carries the `__kafkaMock` brand; requests are
 * answered with the same `id`. The channel is forked with `serialization:
 * 'json'` (the default): the two processes may run different Node versions,
 * so no structured clone; bytes travel as base64.
 *
 *   harness                               mock cluster process
 *   -------                               --------------------
 *                                   <--   ready { bootstrap, librdkafka }
 *                                         or failed { reason }, then it exits
 *   topic { id, topic }             -->
 *                                   <--   topic { id, partitions }
 *   watermarks { id, topic }        -->
 *                                   <--   watermarks { id, high }
 *   read { id, topic, timeoutMs }   -->
 *                                   <--   read { id, records }
 *                                   <--   error { id, error }   for any request that failed
 *   close                           -->   the process exits
 */

/** A record as it crosses the channel: key, value and header values base64 (null stays null). */
export interface WireRecord {
  readonly partition: number
  readonly offset: number
  readonly key: string | null
  readonly value: string | null
  readonly headers: ReadonlyArray<readonly [string, string | null]>
}

export type ToMock =
  | { readonly __kafkaMock: 1; readonly type: 'topic'; readonly id: number; readonly topic: string }
  | { readonly __kafkaMock: 1; readonly type: 'watermarks'; readonly id: number; readonly topic: string }
  | {
      readonly __kafkaMock: 1
      readonly type: 'read'
      readonly id: number
      readonly topic: string
      readonly timeoutMs: number
    }
  | { readonly __kafkaMock: 1; readonly type: 'close' }

export type FromMock =
  | {
      readonly __kafkaMock: 1
      readonly type: 'ready'
      readonly bootstrap: string
      readonly librdkafka: string
    }
  | { readonly __kafkaMock: 1; readonly type: 'failed'; readonly reason: string }
  | { readonly __kafkaMock: 1; readonly type: 'topic'; readonly id: number; readonly partitions: number }
  | {
      readonly __kafkaMock: 1
      readonly type: 'watermarks'
      readonly id: number
      readonly high: readonly number[]
    }
  | {
      readonly __kafkaMock: 1
      readonly type: 'read'
      readonly id: number
      readonly records: readonly WireRecord[]
    }
  | { readonly __kafkaMock: 1; readonly type: 'error'; readonly id: number; readonly error: string }

/** The answers to requests (every FromMock that carries an `id`). */
export type MockAnswer = Extract<FromMock, { id: number }>

export function isFromMock(msg: unknown): msg is FromMock {
  return typeof msg === 'object' && msg !== null && (msg as { __kafkaMock?: unknown }).__kafkaMock === 1
}

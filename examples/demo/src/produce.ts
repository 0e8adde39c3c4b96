import { QueueFullError } from '@vinequeue/core'
import { makeEvent, type Share } from './events.ts'

/** What both a Queue (main thread) and a Producer (worker thread) offer. */
export interface Enqueuer {
  enqueue(item: unknown): boolean
  enqueueAsync(item: unknown): Promise<boolean>
}

/** Items enqueued between two yields to the event loop (lets timers and messages run). */
const CHUNK = 4096

/**
 * Enqueues the share's events as fast as the queue takes them: synchronous
 * `enqueue` on the hot path and, when the ring is at its hard limit (the
 * `block` policy throws QueueFullError), `enqueueAsync` to wait for room.
 */
export async function produce(queue: Enqueuer, share: Share): Promise<void> {
  const end = share.first + share.count
  let id = share.first
  while (id < end) {
    const chunkEnd = Math.min(end, id + CHUNK)
    for (; id < chunkEnd; id++) {
      const item = makeEvent(id)
      try {
        queue.enqueue(item)
      } catch (err) {
        if (!(err instanceof QueueFullError)) throw err
        await queue.enqueueAsync(item)
      }
    }
    await new Promise<void>((resolve) => setImmediate(resolve))
  }
}

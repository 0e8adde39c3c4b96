import { QueueFullError } from '@vinequeue/core'

/** The demo's record: a small analytics event, numbered per producer. */
export interface DemoEvent {
  readonly id: string
  readonly userId: number
  readonly event: string
  readonly ts: number
  readonly data: { readonly path: string; readonly ref: string; readonly n: number }
}

/** What both a Queue (main thread) and a Producer (worker thread) offer. */
export interface Enqueuer {
  enqueue(item: unknown): boolean
  enqueueAsync(item: unknown): Promise<boolean>
}

const kinds = ['page_view', 'click', 'add_to_cart', 'purchase', 'login'] as const

/** Event `n` of producer `ref`; `data.ref` + `data.n` is what verification checks. */
export function makeEvent(ref: string, n: number): DemoEvent {
  return {
    id: `${ref}-${n}`,
    userId: (n * 7919) % 100_000,
    event: kinds[n % kinds.length]!,
    ts: Date.now(),
    data: { path: `/products/${n % 500}`, ref, n },
  }
}

/** Items enqueued between two yields to the event loop (lets timers and messages run). */
const CHUNK = 4096

/**
 * Enqueues events 0…count-1 as fast as the queue takes them: synchronous
 * `enqueue` on the hot path and, when the ring is at its hard limit (the
 * `block` policy throws QueueFullError), `enqueueAsync` to wait for room.
 */
export async function produce(queue: Enqueuer, ref: string, count: number): Promise<void> {
  let n = 0
  while (n < count) {
    const end = Math.min(count, n + CHUNK)
    for (; n < end; n++) {
      const item = makeEvent(ref, n)
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

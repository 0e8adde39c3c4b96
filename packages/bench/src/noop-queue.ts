import { createQueue, type Queue, type QueueOptions } from '@vinequeue/core'

/** The no-op sender module (dist/noop-sender.js next to this file). */
export const NOOP_SENDER: URL = new URL('./noop-sender.js', import.meta.url)

/**
 * A 256 MiB lane: enough for every fixed-size timed run in this package even
 * if the pipeline drained nothing meanwhile, so a timed enqueue never meets
 * the hard limit (and never throws QueueFullError under policy 'block').
 */
export const BENCH_RING_BYTES: number = 256 * 1024 * 1024

/** A started queue delivering to the no-op sender module in the sender pool. */
export async function startNoopQueue(options: Omit<QueueOptions, 'send' | 'sender'> = {}): Promise<Queue> {
  const q = createQueue({ ringBytes: BENCH_RING_BYTES, ...options, sender: { module: NOOP_SENDER } })
  await q.start()
  return q
}

import { createQueue, type Queue, type QueueOptions } from '@vinequeue/core'

/** The no-op sender module (dist/noop-sender.js next to this file). */
export const NOOP_SENDER: URL = new URL('./noop-sender.js', import.meta.url)

/**
 * A started queue delivering to the no-op sender module in the sender pool,
 * with the queue's default options (an 8 MiB lane): what users get. The
 * pipeline drains concurrently, so the lane only fills if it falls behind;
 * every step handles QueueFullError without counting the failed call.
 */
export async function startNoopQueue(options: Omit<QueueOptions, 'send' | 'sender'> = {}): Promise<Queue> {
  const q = createQueue({ ...options, sender: { module: NOOP_SENDER } })
  await q.start()
  return q
}

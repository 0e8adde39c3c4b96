// Shared by the sender tests that check a sender's close(): a queue that runs
// the sender object in this thread (so that this process holds its
// descriptors and sockets), recording what the sender throws and what is
// dead-lettered. Small batches, two attempts, fast retries.
import { createQueue, type DeadLetter, type Queue, type Sender } from '@vinequeue/core'

export function inThreadQueue(sender: Sender): { q: Queue; errors: unknown[]; letters: DeadLetter[] } {
  const errors: unknown[] = []
  const letters: DeadLetter[] = []
  const q = createQueue({
    send: async (batch, ctx) => {
      try {
        return await sender.send(batch, ctx)
      } catch (err) {
        errors.push(err)
        throw err
      }
    },
    maxBatchSize: 10,
    flushIntervalMs: 5,
    maxAttempts: 2,
    retryInitialDelayMs: 1,
    onDeadLetter: (d) => letters.push(d),
  })
  return { q, errors, letters }
}

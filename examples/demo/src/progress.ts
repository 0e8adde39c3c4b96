import type { Queue } from '@vinequeue/core'
import { compact, int, ms } from './format.ts'

/**
 * A live status line from `queue.metrics()` (shared counters, no messaging).
 * On a TTY it is redrawn in place every 250 ms; in a pipe or a CI log it is
 * one line per second.
 */
export function startProgress(queue: Queue, startedAt: number): { stop(): void } {
  const tty = process.stdout.isTTY === true
  let lastSent = 0
  let lastAt = startedAt
  const render = (): void => {
    const now = performance.now()
    const m = queue.metrics()
    const rate = ((m.sentTotal - lastSent) * 1000) / Math.max(1, now - lastAt)
    lastSent = m.sentTotal
    lastAt = now
    const line = [
      `${((now - startedAt) / 1000).toFixed(1).padStart(5)} s`,
      `${compact(rate).padStart(8)} items/s`,
      `enqueued ${int(m.enqueuedTotal)}`,
      `sent ${int(m.sentTotal)}`,
      `in memory ${int(m.memoryQueueSize)}`,
      `batches ${int(m.batchesSentTotal)}`,
      `send p99 ${ms(m.sendLatencyP99)}`,
    ].join('  ')
    // \x1b[K clears what a longer previous line left behind.
    process.stdout.write(tty ? `\r${line}\x1b[K` : `${line}\n`)
  }
  const timer = setInterval(render, tty ? 250 : 1000)
  timer.unref()
  return {
    stop(): void {
      clearInterval(timer)
      render()
      if (tty) process.stdout.write('\n')
    },
  }
}

import type { Metrics } from '@vinequeue/core'
import { compact, int, mib, seconds } from './format.ts'

export interface ProgressSource {
  metrics(): Metrics
  /** Events the sink has stored (distinct ids). */
  delivered(): number
}

export interface Progress {
  /** Prints `text` on a line of its own, stamped with the run's time, above the live line. */
  mark(text: string): void
  /** The sink's state, shown at the end of the live line. */
  sinkState(text: string): void
  /** Largest WAL backlog sampled. */
  readonly peak: { walItems: number; walBytes: number }
  /** Stops the line (drawing it one last time). Idempotent. */
  stop(): void
}

/** How often counters are sampled (and the line redrawn on a TTY). */
const TICK_MS = 250
/** Throughput is averaged over this window. */
const RATE_WINDOW_MS = 1000

/**
 * The live status line, from `queue.metrics()` (shared counters, no
 * messaging) and the sink's counts. On a TTY it is redrawn in place every
 * 250 ms; in a pipe or a CI log it is one line per second.
 */
export function startProgress(source: ProgressSource, startedAt: number): Progress {
  const tty = process.stdout.isTTY === true
  const peak = { walItems: 0, walBytes: 0 }
  const samples: Array<{ at: number; delivered: number }> = [{ at: startedAt, delivered: 0 }]
  let sink = 'up'
  let ticks = 0
  let stopped = false

  const stamp = (): string => `${seconds(performance.now() - startedAt).padStart(7)}`
  const line = (): string => {
    const m = source.metrics()
    const now = performance.now()
    const delivered = source.delivered()
    samples.push({ at: now, delivered })
    while (samples.length > 2 && samples[1]!.at <= now - RATE_WINDOW_MS) samples.shift()
    const first = samples[0]!
    const rate = ((delivered - first.delivered) * 1000) / Math.max(1, now - first.at)
    peak.walItems = Math.max(peak.walItems, m.walPendingItems)
    peak.walBytes = Math.max(peak.walBytes, m.walSize)
    return [
      stamp(),
      `enqueued ${int(m.enqueuedTotal)}`,
      `delivered ${int(delivered)}`,
      `${compact(rate).padStart(7)}/s`,
      `circuit ${m.circuitState.padEnd(9)}`,
      `WAL ${int(m.walPendingItems)} / ${mib(m.walSize)}`,
      `retries ${int(m.retriesTotal)}`,
      `sink ${sink}`,
    ].join('  ')
  }
  // \x1b[K clears what a longer previous line left behind; a line wider than
  // the terminal would wrap, and \r would then redraw only its last row.
  const draw = (text: string): void =>
    void process.stdout.write(
      tty ? `\r${text.slice(0, (process.stdout.columns || 200) - 1)}\x1b[K` : `${text}\n`,
    )
  const tick = (): void => {
    const text = line()
    if (tty || ++ticks % (1000 / TICK_MS) === 0) draw(text)
  }
  const timer = setInterval(tick, TICK_MS)
  timer.unref()

  return {
    peak,
    mark(text: string): void {
      const out = `${stamp()}  ── ${text}`
      process.stdout.write(tty ? `\r${out}\x1b[K\n` : `${out}\n`)
      if (tty && !stopped) draw(line())
    },
    sinkState(text: string): void {
      sink = text
    },
    stop(): void {
      if (stopped) return
      stopped = true
      clearInterval(timer)
      draw(line())
      if (tty) process.stdout.write('\n')
    },
  }
}

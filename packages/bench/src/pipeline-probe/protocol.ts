/**
 * What the pipeline probe (sampler.ts, running on a queue's pipeline thread
 * or on an idle thread) tells the bench's collector (collector.ts): one
 * message a second per probe, over a BroadcastChannel (it reaches every
 * thread of the process; the pipeline thread has no port to the bench).
 *
 *   probe (tag)                          collector
 *   -----------                          ---------
 *   second { tag, at, pauseMs, fdatasyncs } -->   kept by tag and time
 *
 * `at` is the wall clock (`performance.timeOrigin + performance.now()`) at
 * the end of the second: each thread has its own `timeOrigin`, so only the
 * sum compares across threads.
 */
export const PROBE_CHANNEL = 'vinequeue-bench:pipeline-probe'

export interface ProbeSecond {
  readonly __probe: 1
  readonly type: 'second'
  /** Which probe: the `tag` of its module URL (`fs.js?tag=…`), or `idle`. */
  readonly tag: string
  /** Wall clock (ms) when the second ended. */
  readonly at: number
  /** The thread's longest pause in that second (ms): how late its 1 ms timer ran at worst. */
  readonly pauseMs: number
  /** fdatasyncs that ended in that second: [wall clock at the end (ms), duration (ms)] pairs, flattened. */
  readonly fdatasyncs: readonly number[]
}

export function wallClockMs(): number {
  return performance.timeOrigin + performance.now()
}

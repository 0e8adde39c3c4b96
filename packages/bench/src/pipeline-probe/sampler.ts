import { monitorEventLoopDelay } from 'node:perf_hooks'
import { PROBE_CHANNEL, type ProbeSecond, wallClockMs } from './protocol.ts'

/** Resolution of the delay monitor (ms): its timer is due this often, so a pause is the lateness beyond it. */
const RESOLUTION_MS = 1

let fdatasyncs: number[] = []
let started = false

/**
 * Starts sampling this thread: `perf_hooks.monitorEventLoopDelay` (a 1 ms
 * libuv timer) records how late the thread's loop runs it; once a second the
 * worst of that second (minus the timer's own 1 ms) goes to the collector
 * with the fdatasyncs that ended in it. Costs the thread 1000 wake-ups a
 * second: only loaded when measured (the queue's `wal.fs` module option).
 */
export function startSampler(tag: string): void {
  if (started) return
  started = true
  const channel = new BroadcastChannel(PROBE_CHANNEL)
  // (Neither the channel nor the timer keeps the thread alive: it ends when its owner stops it.)
  channel.unref()
  const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
  h.enable()
  setInterval(() => {
    const msg: ProbeSecond = {
      __probe: 1,
      type: 'second',
      tag,
      at: wallClockMs(),
      pauseMs: Math.max(0, h.max / 1e6 - RESOLUTION_MS),
      fdatasyncs,
    }
    h.reset()
    fdatasyncs = []
    channel.postMessage(msg)
  }, 1000).unref()
}

/** One fdatasync as the thread saw it: from the call to its callback (or return). */
export function recordFdatasync(ms: number): void {
  if (started) fdatasyncs.push(wallClockMs(), ms)
}

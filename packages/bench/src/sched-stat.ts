/**
 * CPU time and run-queue wait of every thread of some processes, from Linux's
 * /proc/<pid>/task/<tid>/schedstat (time on a CPU, time runnable but waiting
 * for one, in ns). Over a window, CPU time per second is how many cores the
 * processes kept busy, and wait per second how long their runnable threads
 * stood in line for a core: on a machine with fewer cores than busy threads,
 * the wait is queueing no code of theirs can remove. Threads that exit during
 * a window are not counted.
 */
import { readdirSync, readFileSync } from 'node:fs'

export interface SchedTotals {
  readonly cpuNs: number
  readonly waitNs: number
  readonly atMs: number
}

/** The totals now; undefined where /proc has no schedstat (not Linux, or no schedstats). */
export function schedTotals(pids: readonly number[]): SchedTotals | undefined {
  let cpuNs = 0
  let waitNs = 0
  try {
    for (const pid of pids) {
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        let line: string
        try {
          line = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8')
        } catch {
          continue // (the thread exited meanwhile)
        }
        const [cpu, wait] = line.split(' ')
        cpuNs += Number(cpu)
        waitNs += Number(wait)
      }
    }
  } catch {
    return undefined
  }
  return { cpuNs, waitNs, atMs: performance.now() }
}

/** Between two readings: cores kept busy, and run-queue wait in ms per second. */
export interface SchedShare {
  readonly cores: number
  readonly waitMsPerS: number
}

export function schedShare(
  from: SchedTotals | undefined,
  to: SchedTotals | undefined,
): SchedShare | undefined {
  if (!from || !to || to.atMs <= from.atMs) return undefined
  const ns = (to.atMs - from.atMs) * 1e6
  return { cores: (to.cpuNs - from.cpuNs) / ns, waitMsPerS: ((to.waitNs - from.waitNs) / ns) * 1000 }
}

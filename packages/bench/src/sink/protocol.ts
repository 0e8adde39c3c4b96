/**
 * Messages between the bench (parent) and the HTTP sink process
 * (entry.ts), over the child_process IPC channel. Every message carries the
 * `__sink` brand; requests are answered with the same `id`.
 *
 *   parent                          sink
 *   ------                          ----
 *                           <-- listening { port }
 *   arm { id, items, mode } -->
 *                           <-- armed { id }            counters reset
 *                           <-- reached { id, result }  once `items` were received
 *   clock { id }            -->
 *                           <-- clock { id, now }       the sink's clock, for the offset
 *   report { id }           -->
 *                           <-- report { id, result }   counts so far (duplicates show here)
 */

/**
 * `count`: items counted from each body (msgpack: the array header; JSON:
 * the top-level elements, by a scan that skips strings). `latency`: every
 * body decoded in full and `arrival - item.ts` recorded per item.
 */
export type SinkMode = 'count' | 'latency'

/** Per-item latency percentiles (ms) over one armed round. */
export interface SinkLatency {
  readonly n: number
  readonly p50: number
  readonly p99: number
  readonly p999: number
  readonly max: number
}

/** What the sink received since it was last armed. */
export interface SinkRound {
  readonly items: number
  readonly requests: number
  /** CPU time the sink process used (user + system), ms. */
  readonly cpuMs: number
  /** In `latency` mode. */
  readonly latency?: SinkLatency
}

export type ToSink =
  | {
      readonly __sink: 1
      readonly type: 'arm'
      readonly id: number
      readonly items: number
      readonly mode: SinkMode
    }
  | { readonly __sink: 1; readonly type: 'clock'; readonly id: number }
  | { readonly __sink: 1; readonly type: 'report'; readonly id: number }

export type FromSink =
  | { readonly __sink: 1; readonly type: 'listening'; readonly port: number }
  | { readonly __sink: 1; readonly type: 'armed'; readonly id: number }
  | { readonly __sink: 1; readonly type: 'reached'; readonly id: number; readonly result: SinkRound }
  | { readonly __sink: 1; readonly type: 'clock'; readonly id: number; readonly now: number }
  | { readonly __sink: 1; readonly type: 'report'; readonly id: number; readonly result: SinkRound }

/**
 * The clock both processes stamp with: wall-clock time at process start
 * (`performance.timeOrigin`, sub-millisecond) plus the monotonic
 * `performance.now()`, in ms. `Date.now()` would be the same clock with a
 * 1 ms resolution, too coarse for latencies of a few ms.
 */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now()
}

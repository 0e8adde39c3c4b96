import { setTimeout as sleep } from 'node:timers/promises'
import { Worker } from 'node:worker_threads'
import { percentileOfSorted } from '../stats.ts'
import { PROBE_CHANNEL, type ProbeSecond, wallClockMs } from './protocol.ts'

/** The `wal.fs` module that probes the pipeline thread that loads it, under `tag`. */
export function probeFsModule(tag: string): string {
  const url = new URL('./fs.js', import.meta.url)
  url.searchParams.set('tag', tag)
  return url.href
}

/** p50/p99/p999/max of a list (ms), and how many values. */
export interface Distribution {
  readonly n: number
  readonly p50: number
  readonly p99: number
  readonly p999: number
  readonly max: number
}

export function distribution(values: readonly number[]): Distribution {
  const s = Float64Array.from(values).sort()
  return {
    n: s.length,
    p50: percentileOfSorted(s, 50),
    p99: percentileOfSorted(s, 99),
    p999: percentileOfSorted(s, 99.9),
    max: s.length > 0 ? s[s.length - 1]! : Number.NaN,
  }
}

/**
 * The bench's end of the pipeline probes: keeps what each probe reports,
 * and the windows (`begin`/`end`) during which a tag's figures count. Runs
 * an idle thread with the sampler too (tag `idle`), the floor for the
 * pauses. A second counts for a window when it overlaps it.
 */
export class ProbeCollector {
  readonly #channel = new BroadcastChannel(PROBE_CHANNEL)
  readonly #seconds: ProbeSecond[] = []
  readonly #windows = new Map<string, Array<[number, number]>>()
  readonly #open = new Map<string, number>()
  readonly #idle: Worker

  constructor() {
    this.#channel.onmessage = (e) => {
      const msg = (e as MessageEvent).data as ProbeSecond
      if (msg?.__probe === 1 && msg.type === 'second') this.#seconds.push(msg)
    }
    this.#channel.unref()
    this.#idle = new Worker(new URL('./idle-thread.js', import.meta.url))
    this.#idle.unref()
  }

  /** `tag`'s figures count from now (until `end`). */
  begin(...tags: string[]): void {
    for (const tag of tags) this.#open.set(tag, wallClockMs())
  }

  end(...tags: string[]): void {
    const now = wallClockMs()
    for (const tag of tags) {
      const from = this.#open.get(tag)
      if (from === undefined) continue
      this.#open.delete(tag)
      const list = this.#windows.get(tag) ?? []
      list.push([from, now])
      this.#windows.set(tag, list)
    }
  }

  /** Waits for the seconds still being sampled (each probe reports once a second). */
  async settle(): Promise<void> {
    await sleep(1200)
  }

  #inWindow(tag: string, from: number, to: number): boolean {
    return (this.#windows.get(tag) ?? []).some(([a, b]) => from < b && to > a)
  }

  /** The longest pause of each second of `tag`'s probe that overlaps `tag`'s windows (ms). */
  pauses(tag: string, windowsOf: string = tag): number[] {
    return this.#seconds
      .filter((s) => s.tag === tag && this.#inWindow(windowsOf, s.at - 1000, s.at))
      .map((s) => s.pauseMs)
  }

  /** The fdatasyncs `tag`'s probe saw end within `tag`'s windows (ms). */
  fdatasyncs(tag: string): number[] {
    const out: number[] = []
    for (const s of this.#seconds) {
      if (s.tag !== tag) continue
      for (let i = 0; i < s.fdatasyncs.length; i += 2) {
        const at = s.fdatasyncs[i]!
        if (this.#inWindow(tag, at, at)) out.push(s.fdatasyncs[i + 1]!)
      }
    }
    return out
  }

  /** Milliseconds of `tag`'s windows, all together. */
  windowMs(tag: string): number {
    return (this.#windows.get(tag) ?? []).reduce((sum, [a, b]) => sum + (b - a), 0)
  }

  async close(): Promise<void> {
    this.#channel.close()
    await this.#idle.terminate()
  }
}

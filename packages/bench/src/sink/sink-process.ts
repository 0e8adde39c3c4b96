/**
 * The bench's handle on the HTTP sink process: forks sink/entry.js, waits for
 * its port, and exchanges protocol.ts messages with it.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import type { FromSink, SinkMode, SinkRound, ToSink } from './protocol.ts'
import { wallClockMs } from './protocol.ts'

/** Longest a round may take to deliver everything before it fails. */
const ROUND_TIMEOUT_MS = 180_000

/** `reached` of an armed round: what the sink counted, and when the bench learnt it. */
export interface Reached {
  /** `performance.now()` in the bench when the sink's message arrived. */
  readonly at: number
  readonly result: SinkRound
}

type Pending = (msg: FromSink) => void

export class SinkProcess {
  readonly url: string
  readonly #child: ChildProcess
  readonly #pending = new Map<string, Pending>()
  #nextId = 1

  private constructor(child: ChildProcess, port: number) {
    this.#child = child
    this.url = `http://127.0.0.1:${port}/ingest`
    child.on('message', (msg: FromSink) => {
      if (msg.type === 'listening') return
      const key = `${msg.type}:${msg.id}`
      const pending = this.#pending.get(key)
      this.#pending.delete(key)
      pending?.(msg)
    })
  }

  /** The sink process's id. */
  get pid(): number {
    return this.#child.pid!
  }

  /** Forks the sink and resolves once it listens. */
  static async start(): Promise<SinkProcess> {
    const child = fork(fileURLToPath(new URL('./entry.js', import.meta.url)), [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // Not the bench's flags (a --cpu-prof of the bench should not profile the sink too).
      execArgv: [],
    })
    const exited = once(child, 'exit').then(([code]) => {
      throw new Error(`the sink process exited (code ${code}) before listening`)
    })
    exited.catch(() => {}) // it exits at close() too, long after the race below
    const listening = new Promise<number>((resolve) => {
      const onMessage = (msg: FromSink): void => {
        if (msg.type !== 'listening') return
        child.off('message', onMessage)
        resolve(msg.port)
      }
      child.on('message', onMessage)
    })
    const port = await Promise.race([listening, exited])
    return new SinkProcess(child, port)
  }

  #ask<T extends FromSink['type']>(
    msg: ToSink,
    reply: T,
    timeoutMs = 10_000,
  ): Promise<Extract<FromSink, { type: T }>> {
    return new Promise((resolve, reject) => {
      const key = `${reply}:${msg.id}`
      const timer = setTimeout(() => {
        this.#pending.delete(key)
        reject(new Error(`the sink did not answer ${msg.type} (${reply}) within ${timeoutMs} ms`))
      }, timeoutMs)
      timer.unref()
      this.#pending.set(key, (m) => {
        clearTimeout(timer)
        resolve(m as Extract<FromSink, { type: T }>)
      })
      if (reply === 'reached') return // sent with its 'armed' twin
      this.#child.send(msg)
    })
  }

  /**
   * Resets the sink's counters for a round of `items` items. Resolves once the
   * sink is armed (no request of the round can be counted before), with the
   * promise of the moment it has received them all.
   */
  async arm(items: number, mode: SinkMode): Promise<{ reached: Promise<Reached> }> {
    const id = this.#nextId++
    const msg: ToSink = { __sink: 1, type: 'arm', id, items, mode }
    const reached = this.#ask(msg, 'reached', ROUND_TIMEOUT_MS).then((m) => ({
      at: performance.now(),
      result: m.result,
    }))
    await this.#ask(msg, 'armed')
    return { reached }
  }

  /** What the sink received since it was last armed. */
  async report(): Promise<SinkRound> {
    return (await this.#ask({ __sink: 1, type: 'report', id: this.#nextId++ }, 'report')).result
  }

  /**
   * The sink's clock minus ours (ms), from the ping of least round trip among
   * `pings`: both stamp with performance.timeOrigin + performance.now(), so
   * this should be ~0; it is measured rather than assumed.
   */
  async clockOffset(pings = 30): Promise<{ offsetMs: number; rttMs: number }> {
    let best = { offsetMs: Number.NaN, rttMs: Number.POSITIVE_INFINITY }
    for (let i = 0; i < pings; i++) {
      const t0 = wallClockMs()
      const { now } = await this.#ask({ __sink: 1, type: 'clock', id: this.#nextId++ }, 'clock')
      const t1 = wallClockMs()
      if (t1 - t0 < best.rttMs) best = { offsetMs: now - (t0 + t1) / 2, rttMs: t1 - t0 }
    }
    return best
  }

  /** Kills the sink and waits for it to exit. Idempotent. */
  async close(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return
    const exited = once(this.#child, 'exit')
    this.#child.kill()
    await exited
  }
}

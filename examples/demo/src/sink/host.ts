import { type ChildProcess, fork } from 'node:child_process'
import { EventEmitter, once } from 'node:events'
import type { LedgerSnapshot } from './ledger.ts'
import type { OutagePlan, OutageTimes, ParentToSink, SinkPhase, SinkToParent } from './protocol.ts'
import { SINK_PATH } from './server.ts'

export interface SinkReport {
  readonly ledger: LedgerSnapshot
  readonly outage: OutageTimes | undefined
  readonly requests: number
  /** Requests answered 503. */
  readonly rejected: number
}

/**
 * The parent's handle on the sink process. Emits `phase` (SinkPhase) and
 * `failed` (Error: the process exited, or reported it cannot go on) — after
 * `failed` nothing else is emitted.
 */
export class Sink extends EventEmitter<{ phase: [SinkPhase]; failed: [Error] }> {
  readonly url: string
  /** `process.version` of the sink's process (forked with this process's Node, `process.execPath`). */
  readonly node: string
  /** The latest counts the sink sent (every 200 ms). */
  readonly stats = { unique: 0, received: 0 }
  readonly #child: ChildProcess
  #closing = false

  constructor(child: ChildProcess, port: number, node: string) {
    super()
    this.#child = child
    this.node = node
    this.url = `http://127.0.0.1:${port}${SINK_PATH}`
    child.on('message', (msg: SinkToParent) => {
      if (msg?.__sink !== 1) return
      if (msg.type === 'stats') {
        this.stats.unique = msg.unique
        this.stats.received = msg.received
      } else if (msg.type === 'phase') this.emit('phase', msg.phase)
      else if (msg.type === 'failed') this.emit('failed', new Error(`sink: ${msg.message}`))
    })
    child.once('exit', (code, signal) => {
      if (!this.#closing) this.emit('failed', new Error(`sink process exited (${signal ?? `code ${code}`})`))
    })
  }

  /** Arms the outage: the sink runs it by itself once it has stored `plan.afterItems` events. */
  armOutage(plan: OutagePlan): void {
    this.#send({ __sink: 1, type: 'outage', plan })
  }

  /** Everything the sink stored (the ledger travels as typed arrays: one copy, no JSON). */
  async report(): Promise<SinkReport> {
    const reply = new Promise<SinkReport>((resolve, reject) => {
      const onMessage = (msg: SinkToParent): void => {
        if (msg?.__sink !== 1 || msg.type !== 'report') return
        this.#child.off('message', onMessage)
        this.off('failed', reject)
        this.stats.unique = msg.ledger.unique
        this.stats.received = msg.ledger.received
        resolve(msg)
      }
      this.#child.on('message', onMessage)
      this.once('failed', reject)
    })
    this.#send({ __sink: 1, type: 'report' })
    return reply
  }

  /** Lets the sink exit (it does when its channel closes), killing it after `timeoutMs`. Idempotent. */
  async close(timeoutMs = 2000): Promise<void> {
    this.#closing = true
    const child = this.#child
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    if (child.connected) child.disconnect()
    const timer = setTimeout(() => this.kill(), timeoutMs)
    await exited
    clearTimeout(timer)
  }

  /** SIGKILL, synchronous: for an `exit` handler. Idempotent. */
  kill(): void {
    this.#closing = true
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL')
  }

  #send(msg: ParentToSink): void {
    this.#child.send(msg)
  }
}

/**
 * Forks the sink (sink/entry.js beside this file: its own process, event
 * loop and core, as a real target) and waits until it listens.
 */
export async function startSink(totalEvents: number): Promise<Sink> {
  const child = fork(new URL('./entry.js', import.meta.url), [String(totalEvents)], {
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  try {
    const { port, node } = await new Promise<{ port: number; node: string }>((resolve, reject) => {
      child.on('message', function onMessage(msg: SinkToParent) {
        if (msg?.__sink !== 1 || msg.type !== 'listening') return
        child.off('message', onMessage)
        resolve(msg)
      })
      child.once('error', reject)
      child.once('exit', (code, signal) =>
        reject(new Error(`sink process exited before listening (${signal ?? `code ${code}`})`)),
      )
    })
    return new Sink(child, port, node)
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  }
}

import { BroadcastChannel } from 'node:worker_threads'
import type { Piscina } from 'piscina'
import { ErrorCodes } from '../errors.ts'
import { MetricSlot } from '../metrics/layout.ts'
import type { MetricsWriter } from '../metrics/writer.ts'
import type {
  SenderCloseReply,
  SenderCloseRequest,
  SenderPoolWorkerData,
  SenderTask,
  SenderTaskResult,
} from '../sender-pool/protocol.ts'
import { Watchdog } from '../sender-pool/watchdog.ts'
import type { Flight } from './flight.ts'
import {
  type PoolTransportConfig,
  type StartedPool,
  senderPoolWorkerData,
  startSenderPool,
} from './pool-start.ts'
import type { ErrorInfo } from './protocol.ts'
import { SLAB_HEADER_BYTES } from './slab-pool.ts'
import type { AttemptResult, Transport } from './transport.ts'

/** Grace after `sendTimeoutMs` before a sender thread whose event loop is stuck is terminated. */
const TERMINATE_GRACE_MS = 1000

/** While close() waits for the senders' replies: how often it looks for threads that built one meanwhile (ms). */
const LATE_SENDER_POLL_MS = 20

/** How often the watchdog looks for stuck sender threads (ms). */
const WATCHDOG_INTERVAL_MS = 250

export type { PoolTransportConfig } from './pool-start.ts'

/**
 * Attempts on the sender pool (piscina threads that load the sender module
 * on their first task). Sends are not abortable piscina tasks: piscina gives
 * an abortable task only to an idle thread, which would allow one send per
 * thread. The sender thread settles a send itself at sendTimeoutMs; a thread
 * too stuck to do so (its event loop does not turn) is found by the watchdog
 * and terminated, and its sends are answered as timeouts.
 */
export class PoolTransport implements Transport {
  readonly #config: PoolTransportConfig
  readonly #metrics: MetricsWriter
  readonly #onResult: AttemptResult
  readonly #workerData: SenderPoolWorkerData
  /** Started by the first ready(), or before this transport was made (`started`). */
  #pool: Piscina | undefined
  #ping: Promise<SenderTaskResult> | undefined
  #ready: Promise<void> | undefined
  readonly #watchdog: Watchdog
  #watchdogTimer: NodeJS.Timeout | undefined
  /** Sends on threads the watchdog terminated, whose rejections are still to come (counted as timeouts). */
  #killedSends = 0
  /** The close channel (its replies; which threads built a sender is in the watchdog table). */
  readonly #closeListener: BroadcastChannel
  #onCloseReply: ((reply: SenderCloseReply) => void) | undefined
  #closed = false

  /** `started`: the pool, when the pipeline thread's entry started it already (pool-start.ts). */
  constructor(
    config: PoolTransportConfig,
    metrics: MetricsWriter,
    onResult: AttemptResult,
    started?: StartedPool,
  ) {
    this.#config = config
    this.#metrics = metrics
    this.#onResult = onResult
    this.#workerData = started?.workerData ?? senderPoolWorkerData(config)
    this.#watchdog = new Watchdog(this.#workerData.watchdog)
    this.#closeListener = new BroadcastChannel(this.#workerData.closeChannel)
    this.#closeListener.unref()
    // (No message comes before stop(): the first one a thread receives loads Node's MessageEvent.)
    this.#closeListener.onmessage = (event: MessageEvent) => {
      const msg = event.data as SenderCloseReply
      if (msg?.__vq === 1 && msg.type === 'closed') this.#onCloseReply?.(msg)
    }
    if (started) this.#adopt(started)
  }

  #adopt({ pool, ping }: StartedPool): void {
    this.#pool = pool
    this.#ping = ping
    pool.on('workerDestroy', (worker: { id: number }) => this.#watchdog.release(worker.id))
    this.#watchdogTimer = setInterval(() => this.#checkWatchdog(), WATCHDOG_INTERVAL_MS)
    this.#watchdogTimer.unref()
  }

  /**
   * Starts the pool unless it was started already, and resolves once a pool
   * thread has built its sender; rejects with the sender module's load error.
   */
  ready(): Promise<void> {
    this.#ready ??= this.#start()
    return this.#ready
  }

  async #start(): Promise<void> {
    if (!this.#pool) {
      if (this.#closed) return // (closed before it started: no pool to start)
      this.#adopt(startSenderPool(this.#config, this.#workerData))
    }
    const res = await this.#ping!
    // (The error keeps its code, module and cause: start() rejects with it as what it is.)
    if (res.type === 'loadFailed') throw Object.assign(new Error(res.error.message), res.error)
    if (res.type !== 'pong') throw new Error('sender pool did not answer its ping')
  }

  send(flight: Flight, startedAt: number): void {
    if (!this.#pool) throw new Error('PoolTransport.send before ready()')
    const slab = flight.slab
    const task: SenderTask = {
      __vq: 1,
      type: 'send',
      slab: slab.sab,
      byteOffset: SLAB_HEADER_BYTES,
      byteLength: slab.bytes,
      count: slab.count,
      batchId: flight.batchId,
      batchKey: flight.batchKey,
      attempt: flight.attempt,
    }
    this.#pool.run(task).then(
      (res: SenderTaskResult) => {
        if (res.type === 'sent') this.#onResult(flight, startedAt, res.failed, undefined)
        else if (res.type === 'failed') {
          if (res.error.code === ErrorCodes.SEND_TIMEOUT) this.#metrics.add(MetricSlot.TIMEOUTS, 1)
          this.#onResult(flight, startedAt, undefined, {
            ...res.error,
            retryable: res.error.retryable ?? true,
          })
        } else
          this.#onResult(flight, startedAt, undefined, {
            name: 'Error',
            message: `unexpected reply ${res.type}`,
          })
      },
      (err: Error) => {
        // The task never answered: the thread threw outside send, exited, or
        // was terminated by the watchdog (its event loop was stuck).
        const stuck = this.#killedSends > 0
        if (stuck) this.#killedSends--
        this.#metrics.add(stuck ? MetricSlot.TIMEOUTS : MetricSlot.SENDER_FAILURES, 1)
        this.#onResult(flight, startedAt, undefined, {
          name: stuck ? 'SendTimeoutError' : 'SenderThreadError',
          message: stuck
            ? `send did not settle within ${this.#config.sendTimeoutMs} ms and its thread stopped responding: the thread was terminated`
            : `sender thread failed: ${err?.message ?? String(err)}`,
          code: stuck ? ErrorCodes.SEND_TIMEOUT : ErrorCodes.SEND_FAILED,
          retryable: true,
        })
      },
    )
  }

  /** Terminates sender threads whose event loop has not turned for sendTimeoutMs + grace while sending. */
  #checkWatchdog(): void {
    if (!this.#pool) return
    for (const { threadId, running } of this.#watchdog.stuck(
      this.#config.sendTimeoutMs + TERMINATE_GRACE_MS,
    )) {
      const worker = this.#pool.threads.find((t) => t.threadId === threadId)
      if (!worker) continue
      this.#killedSends += running
      void worker.terminate()
    }
  }

  /**
   * Asks every sender thread to close its sender (waiting at most
   * `closeTimeoutMs`), then shuts the pool (in-flight sends are terminated).
   */
  async close(closeTimeoutMs: number): Promise<ErrorInfo[]> {
    if (this.#closed) return []
    this.#closed = true
    clearInterval(this.#watchdogTimer)
    if (!this.#pool) return []
    const errors = await this.#closeSenders(closeTimeoutMs)
    await this.#pool.destroy()
    return errors
  }

  /**
   * Every sender thread that built a sender (threads load the module on
   * their first task) runs its close() once; replies come back on the
   * same channel.
   */
  async #closeSenders(timeoutMs: number): Promise<ErrorInfo[]> {
    const channel = this.#closeListener
    const errors: ErrorInfo[] = []
    // Threads that exited (a crash, or terminated after a hung send) have nothing left to close.
    const alive = new Set(this.#pool!.threads.map((t) => t.threadId))
    const asked = new Set(this.#watchdog.closing().filter((id) => alive.has(id)))
    const waiting = new Set(asked)
    try {
      if (asked.size === 0) return errors
      await new Promise<void>((resolve) => {
        // A thread that builds its sender while this waits closes it unasked
        // (it finds CLOSING set): it is looked for, and waited for, too —
        // at every reply and every LATE_SENDER_POLL_MS.
        const lookAgain = (): void => {
          for (const id of this.#watchdog.closing()) {
            if (!asked.has(id)) {
              asked.add(id)
              waiting.add(id)
            }
          }
        }
        const late = setInterval(lookAgain, LATE_SENDER_POLL_MS)
        late.unref()
        const timer = setTimeout(() => {
          clearInterval(late)
          errors.push({
            name: 'SenderCloseTimeoutError',
            message: `${waiting.size} of ${asked.size} sender threads did not close their sender within ${timeoutMs} ms`,
          })
          resolve()
        }, timeoutMs)
        this.#onCloseReply = (reply) => {
          if (reply.error) errors.push(reply.error)
          asked.add(reply.threadId)
          waiting.delete(reply.threadId)
          lookAgain()
          if (waiting.size === 0) {
            clearTimeout(timer)
            clearInterval(late)
            resolve()
          }
        }
        channel.postMessage({ __vq: 1, type: 'close' } satisfies SenderCloseRequest)
      })
    } finally {
      this.#onCloseReply = undefined
      channel.close()
    }
    return errors
  }
}

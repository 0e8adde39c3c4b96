import { createRequire } from 'node:module'
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
import { createWatchdogBuffer, Watchdog } from '../sender-pool/watchdog.ts'
import { workerExecArgv } from '../worker-exec-argv.ts'
import type { Flight } from './flight.ts'
import type { ErrorInfo, PipelineConfig } from './protocol.ts'
import { SLAB_HEADER_BYTES } from './slab-pool.ts'
import type { AttemptResult, Transport } from './transport.ts'

/** Grace after `sendTimeoutMs` before a sender thread whose event loop is stuck is terminated. */
const TERMINATE_GRACE_MS = 1000

/** While close() waits for the senders' replies: how often it looks for threads that built one meanwhile (ms). */
const LATE_SENDER_POLL_MS = 20

/** How often the watchdog looks for stuck sender threads (ms). */
const WATCHDOG_INTERVAL_MS = 250

/** The options the pool transport reads (`sender` set: a module sender). */
export type PoolTransportConfig = Pick<
  PipelineConfig,
  'sender' | 'senderThreads' | 'senderConcurrency' | 'sendTimeoutMs'
> & { readonly sender: NonNullable<PipelineConfig['sender']> }

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
  /** Where answers go: given at construction, or by answerTo() (a transport started before its dispatcher). */
  #onResult: AttemptResult
  readonly #workerData: SenderPoolWorkerData
  /** Created by the first ready(). */
  #pool: Piscina | undefined
  #ready: Promise<void> | undefined
  readonly #watchdog: Watchdog
  #watchdogTimer: NodeJS.Timeout | undefined
  /** Sends on threads the watchdog terminated, whose rejections are still to come (counted as timeouts). */
  #killedSends = 0
  /** The close channel (its replies; which threads built a sender is in the watchdog table). */
  readonly #closeListener: BroadcastChannel
  #onCloseReply: ((reply: SenderCloseReply) => void) | undefined
  #closed = false

  constructor(config: PoolTransportConfig, metrics: MetricsWriter, onResult?: AttemptResult) {
    this.#config = config
    this.#metrics = metrics
    this.#onResult =
      onResult ??
      (() => {
        throw new Error('PoolTransport: an answer before answerTo()')
      })
    const watchdog = createWatchdogBuffer()
    this.#watchdog = new Watchdog(watchdog)
    /** BroadcastChannel name on which sender threads are asked to close their senders. */
    const closeChannel = `vinequeue-sender-close-${process.pid}-${Math.random().toString(36).slice(2)}`
    this.#workerData = {
      module: config.sender.module,
      options: config.sender.options,
      sendTimeoutMs: config.sendTimeoutMs,
      closeChannel,
      watchdog,
    }
    this.#closeListener = new BroadcastChannel(closeChannel)
    this.#closeListener.unref()
    // (No message comes before stop(): the first one a thread receives loads Node's MessageEvent.)
    this.#closeListener.onmessage = (event: MessageEvent) => {
      const msg = event.data as SenderCloseReply
      if (msg?.__vq === 1 && msg.type === 'closed') this.#onCloseReply?.(msg)
    }
  }

  /** Where the answers of this transport's attempts go (set once, before the first send). */
  answerTo(onResult: AttemptResult): void {
    this.#onResult = onResult
  }

  /**
   * Starts the pool (piscina is loaded only here, so only for module
   * senders) and loads the sender module in a pool thread; rejects with its
   * error. The first call starts it; later calls get the same promise (the
   * pipeline thread's entry calls it before the pipeline's code is loaded,
   * so that the sender threads boot meanwhile).
   */
  ready(): Promise<void> {
    this.#ready ??= this.#start()
    return this.#ready
  }

  async #start(): Promise<void> {
    const config = this.#config
    if (this.#closed) return // (closed before it started: no pool to start)
    // piscina's CommonJS build, required: its ES module wrapper only re-exports it, one module more to load.
    const { Piscina } = createRequire(import.meta.url)('piscina') as typeof import('piscina')
    this.#pool = new Piscina({
      filename: new URL('../sender-pool/loader.cjs', import.meta.url).href,
      workerData: this.#workerData,
      minThreads: config.senderThreads,
      maxThreads: config.senderThreads,
      concurrentTasksPerWorker: config.senderConcurrency,
      idleTimeout: Number.POSITIVE_INFINITY,
      execArgv: workerExecArgv(),
      // Sends are async I/O: a worker parked in Atomics.wait between tasks
      // would stall its own in-flight requests, so tasks come by message.
      atomics: 'disabled',
    })
    this.#pool.on('workerDestroy', (worker: { id: number }) => this.#watchdog.release(worker.id))
    this.#watchdogTimer = setInterval(() => this.#checkWatchdog(), WATCHDOG_INTERVAL_MS)
    this.#watchdogTimer.unref()
    const res = (await this.#pool.run({ __vq: 1, type: 'ping' } satisfies SenderTask)) as SenderTaskResult
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

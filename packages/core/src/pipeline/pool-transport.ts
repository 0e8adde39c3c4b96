import { BroadcastChannel, type MessagePort } from 'node:worker_threads'
import { ErrorCodes } from '../errors.ts'
import { MetricSlot } from '../metrics/layout.ts'
import type { MetricsWriter } from '../metrics/writer.ts'
import type {
  SenderCloseReply,
  SenderCloseRequest,
  SenderTask,
  SenderThreadMessage,
  SenderThreadPort,
  SendReply,
} from '../sender-pool/protocol.ts'
import { Watchdog } from '../sender-pool/watchdog.ts'
import type { Flight } from './flight.ts'
import type { ErrorInfo, PipelineConfig, PipelineWorkerData } from './protocol.ts'
import { SLAB_HEADER_BYTES } from './slab-pool.ts'
import type { AttemptResult, Transport } from './transport.ts'

/** Grace after `sendTimeoutMs` before a sender thread whose event loop is stuck is terminated. */
const TERMINATE_GRACE_MS = 1000

/** While close() waits for the senders' replies: how often it looks for threads that built one meanwhile (ms). */
const LATE_SENDER_POLL_MS = 20

/** How often the watchdog looks for stuck sender threads (ms). */
const WATCHDOG_INTERVAL_MS = 250

/** The options the sender pool reads (`sender` set: a module sender). */
export type PoolTransportConfig = Pick<PipelineConfig, 'sender' | 'senderConcurrency' | 'sendTimeoutMs'> & {
  readonly sender: NonNullable<PipelineConfig['sender']>
}

/** A sender thread as this side sees it. */
interface SenderThread {
  readonly threadId: number
  readonly port: MessagePort
  /** Tasks sent to it and not answered yet. */
  readonly running: Map<number, { flight: Flight; startedAt: number }>
  /** The watchdog had it terminated: its unanswered tasks count as timeouts. */
  killed: boolean
  /** What it threw outside any send before it ended (`crashed`). */
  crash?: ErrorInfo
}

/**
 * Attempts on the sender threads (started by the queue's thread, each
 * building the sender module's sender once; this side holds a port to
 * each). A task goes to the thread with the fewest sends running, at most
 * `senderConcurrency` each; the rest wait here in order. The sender thread
 * settles a send itself at sendTimeoutMs; a thread too stuck to do so (its
 * event loop does not turn) is found by the watchdog and terminated by the
 * queue's thread (`terminate`), and its sends are answered as timeouts.
 */
export class PoolTransport implements Transport {
  readonly #config: PoolTransportConfig
  readonly #metrics: MetricsWriter
  readonly #onResult: AttemptResult
  /** Asks the queue's thread to terminate (and replace) a sender thread. */
  readonly #terminate: (threadId: number) => void
  readonly #threads = new Map<number, SenderThread>()
  /** Tasks waiting for a free send slot, oldest first. */
  readonly #waiting: Array<{ task: SenderTask; flight: Flight; startedAt: number }> = []
  #nextTask = 1
  readonly #watchdog: Watchdog
  readonly #watchdogTimer: NodeJS.Timeout
  /** The close channel (its replies; which threads built a sender is in the watchdog table). */
  readonly #closeListener: BroadcastChannel
  #onCloseReply: ((reply: SenderCloseReply) => void) | undefined
  #closed = false

  constructor(
    config: PoolTransportConfig,
    metrics: MetricsWriter,
    onResult: AttemptResult,
    senders: NonNullable<PipelineWorkerData['senders']>,
    terminate: (threadId: number) => void,
  ) {
    this.#config = config
    this.#metrics = metrics
    this.#onResult = onResult
    this.#terminate = terminate
    this.#watchdog = new Watchdog(senders.shared.watchdog)
    this.#closeListener = new BroadcastChannel(senders.shared.closeChannel)
    this.#closeListener.unref()
    // (No message comes before stop(): the first one a thread receives loads Node's MessageEvent.)
    this.#closeListener.onmessage = (event: MessageEvent) => {
      const msg = event.data as SenderCloseReply
      if (msg?.__vq === 1 && msg.type === 'closed') this.#onCloseReply?.(msg)
    }
    for (const thread of senders.threads) this.addThread(thread)
    this.#watchdogTimer = setInterval(() => this.#checkWatchdog(), WATCHDOG_INTERVAL_MS)
    this.#watchdogTimer.unref()
  }

  /** A sender thread (one of the first, or one started in place of a thread that exited). */
  addThread({ threadId, port }: SenderThreadPort): void {
    if (this.#closed) {
      port.close()
      return
    }
    const thread: SenderThread = { threadId, port, running: new Map(), killed: false }
    this.#threads.set(threadId, thread)
    port.on('message', (msg: SenderThreadMessage) => this.#onThreadMessage(thread, msg))
    // The thread exited (crashed, or terminated): its sends will never be answered.
    port.once('close', () => this.#onThreadGone(thread))
    this.#dispatchWaiting()
  }

  #onThreadMessage(thread: SenderThread, msg: SenderThreadMessage): void {
    switch (msg.type) {
      case 'crashed':
        thread.crash = msg.error
        break
      case 'reply': {
        const sent = thread.running.get(msg.task)
        if (!sent) return
        thread.running.delete(msg.task)
        this.#answer(sent.flight, sent.startedAt, msg.reply)
        this.#dispatchWaiting()
        break
      }
      default: {
        const never: never = msg
        throw new TypeError(`pipeline: unknown sender thread message ${JSON.stringify(never)}`)
      }
    }
  }

  #answer(flight: Flight, startedAt: number, reply: SendReply): void {
    if (this.#closed) return
    if (reply.type === 'sent') return this.#onResult(flight, startedAt, reply.failed, undefined)
    if (reply.error.code === ErrorCodes.SEND_TIMEOUT) this.#metrics.add(MetricSlot.TIMEOUTS, 1)
    this.#onResult(flight, startedAt, undefined, { ...reply.error, retryable: reply.error.retryable ?? true })
  }

  #onThreadGone(thread: SenderThread): void {
    if (this.#threads.get(thread.threadId) !== thread) return
    this.#threads.delete(thread.threadId)
    this.#watchdog.release(thread.threadId)
    const running = [...thread.running.values()]
    thread.running.clear()
    if (this.#closed) return
    // The task never answered: the thread threw outside send, exited, or
    // was terminated after the watchdog found its event loop stuck.
    const stuck = thread.killed
    for (const { flight, startedAt } of running) {
      this.#metrics.add(stuck ? MetricSlot.TIMEOUTS : MetricSlot.SENDER_FAILURES, 1)
      this.#onResult(flight, startedAt, undefined, {
        name: stuck ? 'SendTimeoutError' : 'SenderThreadError',
        message: stuck
          ? `send did not settle within ${this.#config.sendTimeoutMs} ms and its thread stopped responding: the thread was terminated`
          : thread.crash
            ? `sender thread failed: ${thread.crash.name}: ${thread.crash.message}`
            : 'sender thread exited while sending',
        code: stuck ? ErrorCodes.SEND_TIMEOUT : ErrorCodes.SEND_FAILED,
        retryable: true,
      })
    }
  }

  send(flight: Flight, startedAt: number): void {
    if (this.#closed) return
    const slab = flight.slab
    const task: SenderTask = {
      __vq: 1,
      type: 'send',
      task: this.#nextTask++,
      slab: slab.sab,
      byteOffset: SLAB_HEADER_BYTES,
      byteLength: slab.bytes,
      count: slab.count,
      batchId: flight.batchId,
      batchKey: flight.batchKey,
      attempt: flight.attempt,
    }
    this.#waiting.push({ task, flight, startedAt })
    this.#dispatchWaiting()
  }

  /** Hands waiting tasks to the threads with the fewest sends running, while any has a free slot. */
  #dispatchWaiting(): void {
    while (this.#waiting.length > 0) {
      let best: SenderThread | undefined
      for (const thread of this.#threads.values()) {
        if (thread.killed || thread.running.size >= this.#config.senderConcurrency) continue
        if (!best || thread.running.size < best.running.size) best = thread
      }
      if (!best) return
      const { task, flight, startedAt } = this.#waiting.shift()!
      best.running.set(task.task, { flight, startedAt })
      best.port.postMessage(task)
    }
  }

  /** Has sender threads whose event loop has not turned for sendTimeoutMs + grace while sending terminated. */
  #checkWatchdog(): void {
    for (const { threadId } of this.#watchdog.stuck(this.#config.sendTimeoutMs + TERMINATE_GRACE_MS)) {
      const thread = this.#threads.get(threadId)
      if (!thread) continue
      thread.killed = true
      this.#terminate(threadId)
    }
  }

  /**
   * Asks every sender thread to close its sender (waiting at most
   * `closeTimeoutMs`), then lets go of the threads: their ports are closed
   * and sends still running are never answered (the queue's thread
   * terminates the threads once the pipeline has stopped).
   */
  async close(closeTimeoutMs: number): Promise<ErrorInfo[]> {
    if (this.#closed) return []
    this.#closed = true
    clearInterval(this.#watchdogTimer)
    this.#waiting.length = 0
    const errors = await this.#closeSenders(closeTimeoutMs)
    for (const thread of [...this.#threads.values()]) thread.port.close()
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
    const alive = new Set(this.#threads.keys())
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

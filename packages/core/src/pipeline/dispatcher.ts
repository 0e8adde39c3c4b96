import { BroadcastChannel, type TransferListItem } from 'node:worker_threads'
import type { Piscina } from 'piscina'
import { compactRecords, extractRecords } from '../batch/batch-format.ts'
import { ErrorCodes } from '../errors.ts'
import { MetricSlot } from '../metrics/layout.ts'
import type { MetricsWriter } from '../metrics/writer.ts'
import type { ItemFailure } from '../sender/types.ts'
import type {
  SenderCloseReply,
  SenderCloseRequest,
  SenderOpened,
  SenderPoolWorkerData,
  SenderTask,
  SenderTaskResult,
} from '../sender-pool/protocol.ts'
import { createWatchdogBuffer, Watchdog } from '../sender-pool/watchdog.ts'
import { workerExecArgv } from '../worker-exec-argv.ts'
import { CircuitBreaker, type CircuitStateName } from './circuit-breaker.ts'
import type { ErrorInfo, PipelineConfig, PipelineToHost } from './protocol.ts'
import { SLAB_HEADER_BYTES, type Slab, SlabState } from './slab-pool.ts'

/** Grace after `sendTimeoutMs` before a sender thread whose event loop is stuck is terminated. */
const TERMINATE_GRACE_MS = 1000

export interface DispatchOutcome {
  /** Send latency of this attempt (ms). */
  readonly latencyMs: number
}

/**
 * Sends batches (slabs) and decides what happens to each outcome: settle,
 * retry the failed part after a backoff, or dead-letter. Sends go either to
 * the sender pool (piscina, module senders) or to the host's in-thread `send`.
 */
export class Dispatcher {
  readonly #config: PipelineConfig
  readonly #metrics: MetricsWriter
  readonly #post: (msg: PipelineToHost, transfer?: TransferListItem[]) => void
  readonly #onSettled: (slab: Slab) => void
  /** Every attempt's outcome: its latency (ms), whether the whole batch was delivered, whether the target pushed back. */
  readonly #onOutcome: (ms: number, success: boolean, backPressure: boolean) => void
  readonly #onRetry: () => void
  /** The sender pool (module senders), created by ready(). */
  #pool: Piscina | undefined
  #workerData: SenderPoolWorkerData | undefined
  /** In-thread sends awaiting the host's answer, by batch id. */
  readonly #hostPending = new Map<number, { slab: Slab; startedAt: number; attempt: number }>()
  readonly #retryTimers = new Set<NodeJS.Timeout>()
  readonly #breaker: CircuitBreaker | undefined
  readonly #onDeadLetter: (bytes: Uint8Array, count: number, reason: string, attempts: number) => void
  /** Batches due to be sent while the circuit does not allow it, oldest first. */
  readonly #parked: Slab[] = []
  #unparkTimer: NodeJS.Timeout | undefined
  /** BroadcastChannel name on which sender threads are asked to close their senders. */
  readonly #closeChannel = `vinequeue-sender-close-${process.pid}-${Math.random().toString(36).slice(2)}`
  /** Listens on #closeChannel from the start: counts sender threads that built a sender. */
  #closeListener: BroadcastChannel | undefined
  /** Sender threads (by threadId) that built a sender. */
  readonly #openedSenders = new Set<number>()
  #onCloseReply: ((reply: SenderCloseReply) => void) | undefined
  #closed = false
  readonly #watchdog: Watchdog | undefined
  #watchdogTimer: NodeJS.Timeout | undefined
  /** The last send failed `misconfigured` and none has succeeded since. */
  #misconfigured = false
  /** Sends on threads the watchdog terminated, whose rejections are still to come (counted as timeouts). */
  #killedSends = 0

  constructor(
    config: PipelineConfig,
    metrics: MetricsWriter,
    post: (msg: PipelineToHost, transfer?: TransferListItem[]) => void,
    onSettled: (slab: Slab) => void,
    onOutcome: (ms: number, success: boolean, backPressure: boolean) => void,
    onRetry: () => void,
    onCircuit: (state: CircuitStateName) => void,
    onDeadLetter: (bytes: Uint8Array, count: number, reason: string, attempts: number) => void,
  ) {
    this.#onDeadLetter = onDeadLetter
    this.#config = config
    if (config.circuitBreaker) {
      this.#breaker = new CircuitBreaker(config.circuitBreaker, (state) => {
        this.#metrics.add(MetricSlot.CIRCUIT_TRANSITIONS, 1)
        if (state === 'open') this.#metrics.add(MetricSlot.CIRCUIT_OPENS, 1)
        onCircuit(state)
      })
    }
    this.#metrics = metrics
    this.#post = post
    this.#onSettled = onSettled
    this.#onOutcome = onOutcome
    this.#onRetry = onRetry
    if (config.sender) {
      const watchdog = createWatchdogBuffer()
      this.#watchdog = new Watchdog(watchdog)
      const workerData: SenderPoolWorkerData = {
        module: config.sender.module,
        options: config.sender.options,
        sendTimeoutMs: config.sendTimeoutMs,
        closeChannel: this.#closeChannel,
        watchdog,
      }
      this.#closeListener = new BroadcastChannel(this.#closeChannel)
      this.#closeListener.unref()
      this.#closeListener.onmessage = (event: MessageEvent) => {
        const msg = event.data as SenderOpened | SenderCloseReply
        if (msg?.__vq !== 1) return
        if (msg.type === 'opened') {
          this.#openedSenders.add(msg.threadId)
          // A thread that built its sender after the close request went out: ask again.
          if (this.#onCloseReply)
            this.#closeListener!.postMessage({ __vq: 1, type: 'close' } satisfies SenderCloseRequest)
        } else if (msg.type === 'closed') this.#onCloseReply?.(msg)
      }
      this.#workerData = workerData
    }
  }

  /**
   * Starts the sender pool (piscina is loaded only for module senders) and
   * loads the sender module in a pool thread; rejects with its error.
   */
  async ready(): Promise<void> {
    const config = this.#config
    if (!config.sender) return
    const { Piscina } = await import('piscina')
    if (this.#closed) return // (stopped while piscina loaded: no pool to start)
    this.#pool = new Piscina({
      filename: new URL('../sender-pool/entry.js', import.meta.url).href,
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
    this.#pool.on('workerDestroy', (worker: { id: number }) => this.#watchdog?.release(worker.id))
    this.#watchdogTimer = setInterval(() => this.#checkWatchdog(), 250)
    this.#watchdogTimer.unref()
    const res = (await this.#pool.run({ __vq: 1, type: 'ping' } satisfies SenderTask)) as SenderTaskResult
    // (The error keeps its code, module and cause: start() rejects with it as what it is.)
    if (res.type === 'loadFailed') throw Object.assign(new Error(res.error.message), res.error)
    if (res.type !== 'pong') throw new Error('sender pool did not answer its ping')
  }

  /**
   * Sends (or re-sends) a slab's batch, or parks it while the circuit is
   * open (it goes out when the circuit half-opens or closes).
   */
  send(slab: Slab): void {
    if (this.#closed) return
    const permit = this.#breaker?.acquire() ?? true
    if (permit === false) return this.#park(slab)
    this.#attempt(slab, permit === 'probe')
  }

  /** Batches parked by the circuit breaker. */
  get parked(): number {
    return this.#parked.length
  }

  #park(slab: Slab): void {
    this.#parked.push(slab)
    slab.setState(SlabState.IN_FLIGHT)
    this.#scheduleUnpark()
  }

  /**
   * Makes sure parked batches go out when the circuit lets them: a timer for
   * when an open circuit half-opens; at once if it already has (a state read
   * can move it to half-open: nothing else would then send the probe);
   * nothing while the probes are out (their outcome unparks).
   */
  #scheduleUnpark(): void {
    const breaker = this.#breaker
    if (this.#unparkTimer || this.#parked.length === 0 || !breaker) return
    const ms = breaker.msUntilHalfOpen()
    if (ms <= 0 && breaker.awaitingProbes) return
    this.#unparkTimer = setTimeout(
      () => {
        this.#unparkTimer = undefined
        this.#unpark()
      },
      ms > 0 ? ms + 1 : 0,
    )
  }

  /** Sends parked batches as far as the circuit allows. */
  #unpark(): void {
    while (this.#parked.length > 0 && !this.#closed) {
      const permit = this.#breaker!.acquire()
      if (permit === false) break
      this.#attempt(this.#parked.shift()!, permit === 'probe')
    }
    this.#scheduleUnpark()
  }

  /** One attempt; `probe`: the circuit's half-open probe (its outcome decides the state). */
  #attempt(slab: Slab, probe: boolean): void {
    slab.probe = probe
    if (probe) this.#metrics.add(MetricSlot.CIRCUIT_PROBES, 1)
    slab.attempt++
    if (slab.firstSentAt === 0) slab.firstSentAt = performance.now()
    const startedAt = performance.now()
    slab.setState(SlabState.IN_FLIGHT)
    this.#metrics.add(MetricSlot.IN_FLIGHT_BATCHES, 1)
    if (!this.#pool) {
      this.#hostPending.set(slab.id, { slab, startedAt, attempt: slab.attempt })
      this.#post({
        __vq: 1,
        type: 'send',
        batchId: slab.id,
        attempt: slab.attempt,
        slab: slab.sab,
        count: slab.count,
        byteLength: slab.bytes,
      })
      return
    }
    const task: SenderTask = {
      __vq: 1,
      type: 'send',
      slab: slab.sab,
      byteOffset: SLAB_HEADER_BYTES,
      byteLength: slab.bytes,
      count: slab.count,
      batchId: slab.id,
      attempt: slab.attempt,
    }
    // No abort signal for piscina: it gives an abortable task only to an idle
    // thread, which would allow one send per thread. The sender thread settles
    // the task itself at sendTimeoutMs; a thread too stuck to do so is found by
    // the watchdog and terminated.
    this.#pool.run(task).then(
      (res: SenderTaskResult) => {
        if (res.type === 'sent') this.#outcome(slab, startedAt, res.failed, undefined)
        else if (res.type === 'failed') {
          if (res.error.code === 'VQ_SEND_TIMEOUT') this.#metrics.add(MetricSlot.TIMEOUTS, 1)
          this.#outcome(slab, startedAt, undefined, { ...res.error, retryable: res.error.retryable ?? true })
        } else
          this.#outcome(slab, startedAt, undefined, {
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
        this.#outcome(slab, startedAt, undefined, {
          name: stuck ? 'SendTimeoutError' : 'SenderThreadError',
          message: stuck
            ? `send did not settle within ${this.#config.sendTimeoutMs} ms and its thread stopped responding: the thread was terminated`
            : `sender thread failed: ${err?.message ?? String(err)}`,
          code: stuck ? 'VQ_SEND_TIMEOUT' : 'VQ_SEND_FAILED',
          retryable: true,
        })
      },
    )
  }

  /** Terminates sender threads whose event loop has not turned for sendTimeoutMs + grace while sending. */
  #checkWatchdog(): void {
    if (!this.#pool || !this.#watchdog) return
    for (const { threadId, running } of this.#watchdog.stuck(
      this.#config.sendTimeoutMs + TERMINATE_GRACE_MS,
    )) {
      const worker = this.#pool.threads.find((t) => t.threadId === threadId)
      if (!worker) continue
      this.#killedSends += running
      void worker.terminate()
    }
  }

  /** The host's answer for an in-thread send. */
  hostResult(
    batchId: number,
    attempt: number,
    failed?: readonly ItemFailure[],
    error?: ErrorInfo,
    abandoned?: boolean,
  ): void {
    const pending = this.#hostPending.get(batchId)
    if (!pending || pending.attempt !== attempt) return
    this.#hostPending.delete(batchId)
    if (abandoned) {
      pending.slab.tainted = true
      this.#metrics.add(MetricSlot.TIMEOUTS, 1)
    }
    this.#outcome(pending.slab, pending.startedAt, failed, error)
  }

  #outcome(slab: Slab, startedAt: number, failed?: readonly ItemFailure[], error?: ErrorInfo): void {
    if (this.#closed) return
    this.#metrics.add(MetricSlot.IN_FLIGHT_BATCHES, -1)
    const latency = performance.now() - startedAt
    this.#metrics.recordLatency(latency)
    // Back pressure (for adaptive concurrency): the whole batch failed
    // retryably, or the target answered 429/503 for some of its items.
    const backPressure =
      (error !== undefined && error.retryable !== false) ||
      (failed?.some((f) => f.retryable !== false && (f.status === 429 || f.status === 503)) ?? false)
    this.#onOutcome(latency, !error && !failed?.length, backPressure)
    if (this.#breaker) {
      // The target is unwell if it failed the whole batch with a retryable error.
      this.#breaker.record(error !== undefined && error.retryable !== false, slab.probe)
      slab.probe = false
      if (this.#parked.length > 0) queueMicrotask(() => this.#unpark())
    }
    this.#noteMisconfigured(error)
    if (error) {
      this.#metrics.add(MetricSlot.ERRORS, 1)
      // A sender bug, not a target failure: retried like one, and reported.
      if (error.code === ErrorCodes.INVALID_SEND_RESULT)
        this.#post({ __vq: 1, type: 'invalidSendResult', error })
      if (error.retryable === false) return this.#deadLetterAll(slab, `permanent failure: ${error.message}`)
      return this.#retryOrGiveUp(slab, `${error.name}: ${error.message}`, error.retryAfterMs)
    }
    if (!failed || failed.length === 0) {
      this.#metrics.add(MetricSlot.SENT, slab.count)
      this.#metrics.add(MetricSlot.BATCHES_SENT, 1)
      return this.#onSettled(slab)
    }
    // Partial success: deliver-count the rest, dead-letter permanent ones, retry the others.
    this.#metrics.add(MetricSlot.ERRORS, 1)
    // Checked where the send ran (sender/outcome.ts): distinct indexes within the batch.
    const byIndex = new Map<number, ItemFailure>()
    for (const f of failed) byIndex.set(f.index, f)
    const permanent: number[] = []
    const retry: number[] = []
    for (const [index, f] of [...byIndex].sort((a, b) => a[0] - b[0])) {
      ;(f.retryable === false ? permanent : retry).push(index)
    }
    this.#metrics.add(MetricSlot.SENT, slab.count - byIndex.size)
    // One dead letter per distinct reason, so each item keeps the reason the target gave it.
    const byReason = new Map<string, number[]>()
    for (const index of permanent) {
      const reason = byIndex.get(index)?.reason ?? 'rejected by the sender'
      const group = byReason.get(reason)
      if (group) group.push(index)
      else byReason.set(reason, [index])
    }
    for (const [reason, indexes] of byReason) {
      this.#deadLetter(
        extractRecords(slab.view(), indexes),
        indexes.length,
        `permanent failure: ${reason}`,
        slab.attempt,
      )
    }
    if (retry.length === 0) {
      this.#metrics.add(MetricSlot.BATCHES_SENT, 1)
      return this.#onSettled(slab)
    }
    let retryAfterMs: number | undefined
    for (const index of retry) {
      const after = byIndex.get(index)!.retryAfterMs
      if (typeof after === 'number' && after >= 0) retryAfterMs = Math.max(retryAfterMs ?? 0, after)
    }
    slab.bytes = compactRecords(slab.view(), retry)
    slab.count = retry.length
    slab.setState(SlabState.IN_FLIGHT)
    this.#retryOrGiveUp(slab, byIndex.get(retry[0]!)?.reason ?? 'item failed', retryAfterMs)
  }

  /**
   * A send that failed `misconfigured` (the target cannot be reached as
   * configured, e.g. a TLS certificate that does not verify) opens the
   * circuit at once — retrying sooner cannot help — and the host hears of
   * the first of a run (an error event, health down); the next send that
   * gets through ends the run. The batch itself is retried as usual.
   */
  #noteMisconfigured(error: ErrorInfo | undefined): void {
    if (error?.misconfigured) {
      this.#breaker?.trip()
      if (!this.#misconfigured) this.#post({ __vq: 1, type: 'misconfigured', error })
      this.#misconfigured = true
    } else if (!error && this.#misconfigured) {
      this.#misconfigured = false
      this.#post({ __vq: 1, type: 'misconfigured' })
    }
  }

  /**
   * Retries after an exponential backoff with full jitter (a random delay
   * up to min(retryMaxDelayMs, retryInitialDelayMs × 2^(attempt-1)), so the
   * retries of many batches spread out), never sooner than the target's
   * `retryAfterMs`; or dead-letters the batch when it is out of attempts or
   * older than maxRetryAgeMs.
   */
  #retryOrGiveUp(slab: Slab, reason: string, retryAfterMs?: number): void {
    if (slab.attempt >= this.#config.maxAttempts) {
      return this.#deadLetterAll(slab, `gave up after ${slab.attempt} attempts: ${reason}`)
    }
    const age = performance.now() - slab.firstSentAt
    if (age >= this.#config.maxRetryAgeMs) {
      return this.#deadLetterAll(
        slab,
        `gave up after ${Math.round(age)} ms (maxRetryAgeMs ${this.#config.maxRetryAgeMs}), ${slab.attempt} attempts: ${reason}`,
      )
    }
    this.#metrics.add(MetricSlot.RETRIES, 1)
    slab.retrying = true
    this.#onRetry()
    const cap = Math.min(
      this.#config.retryMaxDelayMs,
      this.#config.retryInitialDelayMs * 2 ** Math.min(30, slab.attempt - 1),
    )
    const delay = Math.max(Math.random() * cap, Math.min(retryAfterMs ?? 0, this.#config.retryMaxDelayMs))
    const timer = setTimeout(() => {
      this.#retryTimers.delete(timer)
      this.send(slab)
    }, delay)
    this.#retryTimers.add(timer)
  }

  #deadLetterAll(slab: Slab, reason: string): void {
    this.#deadLetter(slab.view().slice(), slab.count, reason, slab.attempt)
    this.#onSettled(slab)
  }

  #deadLetter(bytes: Uint8Array, count: number, reason: string, attempts: number): void {
    this.#metrics.add(MetricSlot.DEAD_LETTERED, count)
    this.#onDeadLetter(bytes, count, reason, attempts)
    this.#post({ __vq: 1, type: 'deadLetter', bytes, count, reason, attempts }, [bytes.buffer as ArrayBuffer])
  }

  /**
   * Stops retrying and sending; asks every sender thread to close its sender
   * (waiting at most `closeTimeoutMs`), then shuts the pool (in-flight sends
   * are terminated). Resolves with the errors the senders' close() threw.
   * Idempotent.
   */
  async close(closeTimeoutMs: number): Promise<ErrorInfo[]> {
    if (this.#closed) return []
    this.#closed = true
    for (const t of this.#retryTimers) clearTimeout(t)
    this.#retryTimers.clear()
    clearTimeout(this.#unparkTimer)
    clearInterval(this.#watchdogTimer)
    this.#parked.length = 0
    this.#hostPending.clear()
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
    const channel = this.#closeListener!
    const errors: ErrorInfo[] = []
    // Threads that exited (a crash, or terminated after a hung send) have nothing left to close.
    const alive = new Set(this.#pool!.threads.map((t) => t.threadId))
    for (const id of this.#openedSenders) if (!alive.has(id)) this.#openedSenders.delete(id)
    try {
      if (this.#openedSenders.size === 0) return errors
      await new Promise<void>((resolve) => {
        let replies = 0
        const timer = setTimeout(() => {
          errors.push({
            name: 'SenderCloseTimeoutError',
            message: `${this.#openedSenders.size - replies} of ${this.#openedSenders.size} sender threads did not close their sender within ${timeoutMs} ms`,
          })
          resolve()
        }, timeoutMs)
        this.#onCloseReply = (reply) => {
          if (reply.error) errors.push(reply.error)
          if (++replies >= this.#openedSenders.size) {
            clearTimeout(timer)
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

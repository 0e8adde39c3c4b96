import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { Worker } from 'node:worker_threads'
import { concatBatches, decodeItemsLenient } from '../batch/batch-format.ts'
import { channels } from '../diagnostics.ts'
import { type ErrorInfo, errorFromInfo } from '../error-info.ts'
import {
  DeadLetterFileError,
  InvalidArgumentError,
  InvalidConfigError,
  InvalidSendResultError,
  NotStartedError,
  PipelineDownError,
  QueueClosedError,
  SendError,
  SenderLoadError,
  StartTimeoutError,
} from '../errors.ts'
import { createMetricsBuffer } from '../metrics/layout.ts'
import type {
  HostToPipeline,
  PipelineConfig,
  PipelineToHost,
  PipelineWorkerData,
} from '../pipeline/protocol.ts'
import type { ProducerHandle } from '../producer/handle.ts'
import { Producer } from '../producer/producer.ts'
import {
  ControlSlot,
  createControlBuffer,
  createLaneBuffer,
  laneCapacityFor,
  QueueState,
} from '../ring/layout.ts'
import { workerExecArgv } from '../worker-exec-argv.ts'
import { runInThreadSend } from './in-thread-send.ts'
import { pipelineWorkers } from './internals.ts'
import { finishedLaneCounters, type LaneCounters, readHistograms, readMetrics } from './metrics-reader.ts'
import { PIPELINE_OPTION_KEYS } from './option-table.ts'
import { resolveOptions } from './options.ts'
import { SenderThreads } from './sender-threads.ts'
import { collectLeftovers, makeStopReport } from './stop-report.ts'
import type {
  EnqueueAsyncOptions,
  Health,
  HealthStatus,
  LatencyHistograms,
  Metrics,
  QueueEvents,
  QueueOptions,
  ResolvedOptions,
  StopReport,
} from './types.ts'

/**
 * How long stop() waits past its `timeoutMs` for the pipeline thread to close
 * the senders (at most 1 s of it), the pool and the log and report, before it
 * terminates the thread (whose event loop must then be stuck).
 */
const STOP_GRACE_MS = 5000

type Lifecycle = 'created' | 'starting' | 'running' | 'stopping' | 'stopped' | 'down'

/**
 * A VineQueue. Enqueue on this thread (or on producer threads through
 * `producerPort()`); a pipeline thread batches and a sender delivers.
 *
 * Its length (~650 lines) is the host's half of the pipeline protocol: the
 * lifecycle (start() with its timeout and each way it can fail, stop() with
 * its grace period and the read-back of a stuck pipeline's batches), one
 * handler per message the pipeline posts, and health() built from them. The
 * producer (producer/), option resolution (options.ts), the metrics reader
 * (metrics-reader.ts), in-thread sends (in-thread-send.ts) and the
 * rebuilding of errors (../error-info.ts) live in their own modules.
 */
export class Queue extends EventEmitter<QueueEvents> {
  /** The resolved options (preset + defaults + yours). */
  readonly options: ResolvedOptions
  readonly #control: SharedArrayBuffer
  readonly #controlI32: Int32Array
  readonly #metrics: SharedArrayBuffer
  readonly #lanes: SharedArrayBuffer[] = []
  /** Counters of closed, drained producer lanes that were let go (their memory freed). */
  readonly #retired: LaneCounters = {
    enqueued: 0,
    consumed: 0,
    droppedNewest: 0,
    droppedOldest: 0,
    rejected: 0,
    paced: 0,
  }
  /** The pipeline's batch slabs by uid, read back if the pipeline thread dies. */
  readonly #slabs = new Map<number, SharedArrayBuffer>()
  readonly #producer: Producer
  readonly #requests = new Map<number, { resolve: () => void; reject: (e: Error) => void }>()
  #nextRequest = 1
  #worker: Worker | undefined
  /** A module sender's threads (started by start(), terminated when the pipeline thread has exited). */
  #senders: SenderThreads | undefined
  #lifecycle: Lifecycle = 'created'
  #startPromise: Promise<void> | undefined
  #stopPromise: Promise<StopReport> | undefined
  #onStopped: ((msg: Extract<PipelineToHost, { type: 'stopped' }>) => void) | undefined
  #downError: Error | undefined
  /** Why start() failed while the pipeline is still being shut down (start timeout). */
  #startError: Error | undefined
  #shutdown: Promise<Extract<PipelineToHost, { type: 'stopped' }> | undefined> | undefined
  #backpressure = false
  /** While the dead-letter file cannot be written: the items waiting for it and the error code. */
  #deadLetterFileFailing: { items: number; code: string } | undefined
  /** The last send failed `misconfigured` (e.g. TLS verification) and none has succeeded since. */
  #misconfigured: ErrorInfo | undefined
  #lastStatus: HealthStatus = 'ok'
  /** Conditions of the write-ahead log that health() reports while they last, by kind. */
  readonly #walConditions = new Map<string, { status: 'degraded' | 'down'; reason: string }>()

  constructor(options: QueueOptions) {
    super()
    this.options = resolveOptions(options)
    this.#control = createControlBuffer()
    this.#controlI32 = new Int32Array(this.#control)
    this.#metrics = createMetricsBuffer()
    this.#producer = new Producer(this.producerPort())
  }

  /**
   * Starts the pipeline thread (and the sender pool, loading the sender
   * module once to fail fast). Items enqueued before start() wait in the ring.
   * Idempotent while the queue runs; after stop() it rejects with
   * QueueClosedError. Rejects with StartTimeoutError after `startTimeoutMs`
   * (the threads it started are shut down first), InvalidConfigError when
   * the sender factory refuses its options, SenderLoadError when the sender
   * module cannot be loaded, else PipelineDownError.
   */
  start(): Promise<void> {
    if (this.#lifecycle === 'stopping' || this.#lifecycle === 'stopped') {
      return Promise.reject(this.#closedError())
    }
    if (this.#startPromise) return this.#startPromise
    if (this.#lifecycle !== 'created') return Promise.reject(this.#closedError())
    this.#lifecycle = 'starting'
    this.#startPromise = new Promise<void>((resolve, reject) => {
      const o = this.options
      // A module sender's first thread boots beside the pipeline thread (start()
      // waits for both); the others start once the queue is ready.
      const senders = o.sender
        ? new SenderThreads({ sender: o.sender, sendTimeoutMs: o.sendTimeoutMs }, (thread) =>
            this.#worker?.postMessage({ __vq: 1, type: 'senderThread', thread }, [thread.port]),
          )
        : undefined
      this.#senders = senders
      const first = senders?.start()
      const workerData: PipelineWorkerData = {
        control: this.#control,
        metrics: this.#metrics,
        lanes: [...this.#lanes],
        config: Object.fromEntries(PIPELINE_OPTION_KEYS.map((key) => [key, o[key]])) as PipelineConfig,
        runId: randomBytes(16).toString('hex'),
        senders: senders && first ? { shared: senders.shared, threads: [first] } : undefined,
      }
      let worker: Worker
      try {
        // (src/pipeline/ bundled at build: scripts/bundle-threads.mjs.)
        worker = new Worker(new URL('../pipeline-thread/entry.js', import.meta.url), {
          workerData,
          transferList: first ? [first.port] : [],
          name: 'vinequeue-pipeline',
          execArgv: workerExecArgv(),
        })
      } catch (err) {
        void senders?.close()
        throw err
      }
      this.#worker = worker
      pipelineWorkers.set(this, worker)
      let fatal: ErrorInfo | Error | undefined
      let settled = false
      // start() resolves once the pipeline thread has opened its files
      // (`ready`) and a sender thread has built its sender (or at once for an
      // in-thread send): each thread says so itself.
      let pipelineReady = false
      let senderBuilt = !senders
      const started = (): void => {
        if (settled || !pipelineReady || !senderBuilt) return
        settled = true
        clearTimeout(timer)
        // stop() may have been called while starting: it stays stopping (the pipeline, asked to stop first, abandons its start).
        if (this.#lifecycle === 'starting') {
          this.#lifecycle = 'running'
          Atomics.store(this.#controlI32, ControlSlot.STATE, QueueState.RUNNING)
          worker.postMessage({ __vq: 1, type: 'started' } satisfies HostToPipeline)
          senders?.add(o.senderThreads - 1)
        }
        resolve()
        if (channels.start.hasSubscribers) channels.start.publish({ queue: this })
      }
      void senders?.built.then((failure) => {
        if (settled || this.#startError) return
        if (!failure) {
          senderBuilt = true
          return started()
        }
        // (Stopping: that shutdown is under way already.)
        if (this.#lifecycle !== 'starting') return
        // The sender cannot be built: the pipeline abandons its start (closing its log) and exits; the exit rejects.
        this.#startError = startFailure(failure, 0)
        this.#shutDownWorker(worker, 0)
      })
      // start() must settle even if the sender's factory never does: past
      // startTimeoutMs the pipeline is asked to stop (it shuts the pool and
      // closes the log, releasing its lock) and terminated if it does not.
      const timer = setTimeout(() => {
        if (settled || this.#lifecycle !== 'starting') return
        this.#startError = new StartTimeoutError(
          `start() did not finish within startTimeoutMs (${o.startTimeoutMs} ms): the sender module ${o.sender?.module ?? ''} did not become ready (does its factory settle?)`,
          { timeoutMs: o.startTimeoutMs },
        )
        this.#shutDownWorker(worker, 0)
      }, o.startTimeoutMs)
      timer.unref()
      worker.on('message', (msg: PipelineToHost) => {
        if (msg.type === 'ready') {
          // (Ready just as the start timed out or failed: too late, the shutdown is under way and the exit rejects.)
          if (this.#startError) return
          pipelineReady = true
          return started()
        }
        if (msg.type === 'fatal') {
          fatal = msg.error
          return
        }
        this.#onMessage(msg)
      })
      worker.on('error', (err) => {
        fatal = err
      })
      worker.on('exit', (code) => {
        clearTimeout(timer)
        // (The pipeline is gone: nothing sends on the sender threads any more.)
        void senders?.close()
        if (!settled) {
          settled = true
          const err =
            this.#startError ??
            (this.#lifecycle === 'starting'
              ? startFailure(fatal, code)
              : new QueueClosedError('The queue was stopped before it had started', { reason: 'stopped' }))
          if (this.#lifecycle === 'starting') {
            this.#lifecycle = 'down'
            this.#downError = err
            Atomics.store(this.#controlI32, ControlSlot.STATE, QueueState.DOWN)
          }
          reject(err)
          return
        }
        // (While stopping, stop() collects what an exit left behind, reported or not.)
        if (this.#lifecycle !== 'running') return
        this.#goDown(
          fatal instanceof Error
            ? fatal
            : fatal
              ? errorFromInfo(fatal)
              : new Error(`pipeline thread exited with code ${code}`),
        )
      })
    })
    return this.#startPromise
  }

  /**
   * Asks the pipeline thread to stop (`timeoutMs` to deliver what it holds)
   * and terminates it if it has not exited `graceMs` later (its event loop is
   * stuck). Resolves with its `stopped` report, if one came, once it is gone.
   */
  #shutDownWorker(
    worker: Worker,
    timeoutMs: number,
    graceMs = STOP_GRACE_MS,
  ): Promise<Extract<PipelineToHost, { type: 'stopped' }> | undefined> {
    this.#shutdown ??= new Promise((resolve) => {
      let report: Extract<PipelineToHost, { type: 'stopped' }> | undefined
      const kill = setTimeout(() => void worker.terminate(), timeoutMs + graceMs)
      kill.unref()
      this.#onStopped = (msg) => {
        report = msg
        void worker.terminate()
      }
      worker.once('exit', () => {
        clearTimeout(kill)
        void (this.#senders?.close() ?? Promise.resolve()).then(() => resolve(report))
      })
      worker.postMessage({ __vq: 1, type: 'stop', timeoutMs })
    })
    return this.#shutdown
  }

  #onMessage(msg: PipelineToHost): void {
    switch (msg.type) {
      case 'flushed': {
        const req = this.#requests.get(msg.id)
        this.#requests.delete(msg.id)
        req?.resolve()
        break
      }
      case 'send':
        if (channels.send.hasSubscribers) {
          channels.send.publish({ queue: this, batchId: msg.id, count: msg.count, attempt: msg.attempt })
        }
        runInThreadSend(msg, this.options, (result) => this.#worker?.postMessage(result))
        break
      case 'deadLetter': {
        // Items that do not decode come as UndecodableItem { raw, decodeError }.
        const items = decodeItemsLenient(msg.bytes, msg.count)
        const deadLetter = { items, reason: msg.reason, attempts: msg.attempts }
        if (channels.deadLetter.hasSubscribers) {
          channels.deadLetter.publish({
            queue: this,
            count: msg.count,
            reason: msg.reason,
            attempts: msg.attempts,
          })
        }
        try {
          this.options.onDeadLetter?.(deadLetter)
        } catch (err) {
          this.#emitError(err as Error)
        }
        this.emit('deadLetter', deadLetter)
        break
      }
      case 'backpressure':
        this.#backpressure = msg.active
        if (channels.backpressure.hasSubscribers)
          channels.backpressure.publish({ queue: this, active: msg.active })
        this.emit('backpressure', msg.active)
        this.#statusMaybeChanged()
        break
      case 'circuit':
        if (channels.circuit.hasSubscribers) channels.circuit.publish({ queue: this, state: msg.state })
        this.emit('circuit', msg.state)
        this.#statusMaybeChanged()
        break
      case 'wal':
        if (msg.event === 'recovered') {
          this.emit('recovered', { items: msg.items ?? 0, ms: msg.ms ?? 0 })
        } else if (msg.event === 'error') {
          this.#emitError(errorFromInfo(msg.error!))
        } else if (msg.event === 'condition') {
          if (msg.status && msg.reason)
            this.#walConditions.set(msg.condition!, { status: msg.status, reason: msg.reason })
          else this.#walConditions.delete(msg.condition!)
          this.#statusMaybeChanged()
        } else {
          this.emit('walFull', msg.event === 'full')
          this.#statusMaybeChanged()
        }
        break
      case 'terminateSender':
        this.#senders?.terminate(msg.threadId)
        break
      case 'senderCloseError':
        this.#emitError(errorFromInfo(msg.error))
        break
      case 'misconfigured':
        this.#misconfigured = msg.error
        if (msg.error) {
          const { message, status } = msg.error
          this.#emitError(
            new SendError(`The target cannot be reached as configured: ${message}`, {
              retryable: true,
              misconfigured: true,
              ...(status === undefined ? {} : { status }),
              cause: errorFromInfo(msg.error),
            }),
          )
        }
        this.#statusMaybeChanged()
        break
      case 'deadLetterFile':
        this.#deadLetterFileFailing = msg.error
          ? { items: msg.pendingItems, code: msg.error.code ?? msg.error.name }
          : undefined
        if (msg.error) {
          const kept = msg.notKept
            ? `; ${msg.notKept} item(s) not kept for it (over 16 MiB waiting)`
            : `; ${msg.pendingItems} item(s) kept in memory, written when it works again (tried every 1 s)`
          this.#emitError(
            new DeadLetterFileError(
              `Writing the dead-letter file ${msg.path} failed: ${msg.error.message}${kept}. The items went to onDeadLetter and the deadLetter event`,
              { path: msg.path, count: msg.pendingItems, cause: errorFromInfo(msg.error) },
            ),
          )
        }
        this.#statusMaybeChanged()
        break
      case 'invalidSendResult':
        this.#emitError(new InvalidSendResultError(msg.error.message, { retryable: true }))
        break
      case 'newSlab':
        this.#slabs.set(msg.uid, msg.slab)
        break
      case 'retiredSlab':
        this.#slabs.delete(msg.uid)
        break
      case 'stopped':
        this.#onStopped?.(msg)
        break
      case 'ready':
      case 'fatal':
        break
      default: {
        const never: never = msg
        throw new TypeError(`queue: unknown pipeline message ${JSON.stringify(never)}`)
      }
    }
  }

  #emitError(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err)
    else process.emitWarning(err)
  }

  #goDown(cause: Error): void {
    this.#lifecycle = 'down'
    Atomics.store(this.#controlI32, ControlSlot.STATE, QueueState.DOWN)
    const err = new PipelineDownError(`The queue is down: the pipeline thread died (${cause.message})`, {
      cause,
    })
    this.#downError = err
    for (const req of this.#requests.values()) req.reject(err)
    this.#requests.clear()
    if (channels.down.hasSubscribers) channels.down.publish({ queue: this, error: err })
    this.#statusMaybeChanged()
    this.#emitError(err)
  }

  #statusMaybeChanged(): void {
    const status = this.health().status
    if (status !== this.#lastStatus) {
      this.#lastStatus = status
      this.emit('stateChange', status)
    }
  }

  #closedError(): Error {
    if (this.#lifecycle === 'down') {
      return new QueueClosedError('The queue is down: its pipeline thread died', {
        reason: 'down',
        cause: this.#downError,
      })
    }
    return new QueueClosedError('The queue is stopped', { reason: 'stopped' })
  }

  /**
   * Encodes `item` (msgpack) and appends it. Synchronous; returns false when
   * the `dropNewest` policy dropped it.
   * @throws QueueClosedError, QueueFullError, ItemTooLargeError, EncodeError
   */
  enqueue(item: unknown): boolean {
    return this.#producer.enqueue(item)
  }

  /** Appends every item or none (see Producer.enqueueBatch). */
  enqueueBatch(items: readonly unknown[]): boolean {
    return this.#producer.enqueueBatch(items)
  }

  /** Appends pre-encoded bytes as one item, skipping msgpack. */
  enqueueRaw(bytes: Uint8Array): boolean {
    return this.#producer.enqueueRaw(bytes)
  }

  /**
   * Waits for room instead of failing: paced to the lane's drain rate past
   * the soft limit, and under `block` waits for room at the hard limit — up to
   * `maxBlockMs` held back in all (see the README's "Backpressure"), then
   * BackpressureError.
   */
  enqueueAsync(item: unknown, options?: EnqueueAsyncOptions): Promise<boolean> {
    return this.#producer.enqueueAsync(item, options)
  }

  /** `enqueueRaw` that waits for room like `enqueueAsync`. */
  enqueueRawAsync(bytes: Uint8Array, options?: EnqueueAsyncOptions): Promise<boolean> {
    return this.#producer.enqueueRawAsync(bytes, options)
  }

  /**
   * A handle for another thread to enqueue with its own lane: post it to a
   * worker and call `connectProducer(handle)` there.
   */
  producerPort(): ProducerHandle {
    if (this.#lifecycle !== 'created' && this.#lifecycle !== 'starting' && this.#lifecycle !== 'running') {
      throw this.#closedError()
    }
    this.#retireLanes()
    const lane = createLaneBuffer(laneCapacityFor(this.options.ringBytes))
    this.#lanes.push(lane)
    if (this.#worker) this.#worker.postMessage({ __vq: 1, type: 'addLane', lane })
    const o = this.options
    return {
      __vinequeueProducer: 1,
      lane,
      control: this.#control,
      limits: {
        maxItemBytes: o.maxItemBytes,
        softLimit: o.softLimit,
        hardLimit: o.hardLimit,
        fullPolicy: o.fullPolicy === 'spill' ? 'block' : o.fullPolicy,
        maxBlockMs: o.maxBlockMs,
        maxBackoffMs: o.maxBackoffMs,
        maxGroupItems: o.maxBatchSize,
        maxGroupBytes: Math.min(o.maxItemBytes, o.maxBatchBytes),
        strictItems: o.strictItems,
      },
    }
  }

  #request(drain: boolean): Promise<void> {
    if (this.#lifecycle === 'created') {
      return Promise.reject(new NotStartedError('The queue is not started: call start() first'))
    }
    if (this.#lifecycle === 'down' || this.#lifecycle === 'stopped')
      return Promise.reject(this.#closedError())
    return (this.#startPromise ?? Promise.resolve()).then(
      () =>
        new Promise<void>((resolve, reject) => {
          if (!this.#worker || this.#lifecycle === 'down') return reject(this.#closedError())
          this.#producer.publish()
          const id = this.#nextRequest++
          this.#requests.set(id, { resolve, reject })
          this.#worker.postMessage({ __vq: 1, type: 'flush', id, drain })
        }),
    )
  }

  /**
   * Resolves when every item enqueued on this thread before the call has been
   * handed to a sender (cut into a batch and sent; with the WAL: durable).
   */
  flush(): Promise<void> {
    return this.#request(false)
  }

  /** Resolves when every item enqueued before the call is delivered or dead-lettered. */
  drain(): Promise<void> {
    return this.#request(true)
  }

  /**
   * Stops intake at once (enqueue throws QueueClosedError), delivers what is
   * in memory for up to `timeoutMs`, then reports what was not delivered —
   * nothing is dropped silently. Idempotent: later calls get the same report.
   */
  stop(options?: { timeoutMs?: number }): Promise<StopReport> {
    if (this.#stopPromise) return this.#stopPromise
    const timeoutMs = options?.timeoutMs ?? 30_000
    if (!Number.isFinite(timeoutMs) || timeoutMs < 0) {
      return Promise.reject(
        new InvalidArgumentError(`stop: timeoutMs must be a finite number ≥ 0 (got ${timeoutMs})`),
      )
    }
    if (this.#lifecycle !== 'down') {
      this.#lifecycle = 'stopping'
      Atomics.store(this.#controlI32, ControlSlot.STATE, QueueState.CLOSED)
    }
    this.#producer.publish()
    this.#stopPromise = (async (): Promise<StopReport> => {
      let leftovers: Uint8Array = new Uint8Array(0)
      let count = 0
      let timedOut = false
      let walPendingItems = 0
      let reported = false
      if (this.#worker && (this.#lifecycle === 'stopping' || this.#startError)) {
        // (A start that timed out is being shut down already: this waits for it.)
        const stopped = await this.#shutDownWorker(this.#worker, timeoutMs)
        if (stopped) {
          reported = true
          leftovers = stopped.leftovers
          count = stopped.count
          timedOut = stopped.timedOut
          walPendingItems = stopped.walPendingItems
        } else if (this.#lifecycle === 'stopping') timedOut = true
        await this.#startPromise?.catch(() => undefined)
        if (this.#lifecycle === 'stopping') this.#lifecycle = 'stopped'
      }
      // The pipeline is gone (stopped, died or never started): this thread is
      // now the only consumer, so it collects whatever is still in the lanes
      // and — after a crash — in the shared batch slabs.
      // A pipeline terminated without its report (stuck past the deadline)
      // leaves its batches in the slabs, as after a crash.
      const rest = collectLeftovers(
        this.#lanes,
        this.#lifecycle === 'down' || (this.#worker && !reported) ? [...this.#slabs.values()] : [],
      )
      if (rest.count > 0) {
        leftovers = concatBatches([leftovers, rest.bytes])
        count += rest.count
      }
      if (this.#lifecycle !== 'down') this.#lifecycle = 'stopped'
      for (const req of this.#requests.values()) req.reject(this.#closedError())
      this.#requests.clear()
      const report = makeStopReport(this.metrics().sentTotal, leftovers, count, timedOut, walPendingItems)
      if (channels.stop.hasSubscribers) channels.stop.publish({ queue: this, report })
      this.#statusMaybeChanged()
      return report
    })()
    return this.#stopPromise
  }

  /** A snapshot of the shared counters, read without messaging any thread. */
  metrics(): Metrics {
    this.#retireLanes()
    return readMetrics(this.#metrics, this.#control, this.#lanes, this.options, this.#retired)
  }

  /**
   * The send-latency and WAL fsync histograms behind `metrics()`'s
   * percentiles, bucket by bucket (for exporters such as Prometheus), read
   * from shared memory without messaging any thread.
   */
  latencyHistograms(): LatencyHistograms {
    return readHistograms(this.#metrics)
  }

  /**
   * Lets go of lanes whose producer thread closed them once they are empty
   * (the pipeline drops its side too), keeping their counters: short-lived
   * producer threads do not pile up ring memory. Lane 0 is this thread's own.
   */
  #retireLanes(): void {
    for (let i = this.#lanes.length - 1; i > 0; i--) {
      const counters = finishedLaneCounters(this.#lanes[i]!)
      if (!counters) continue
      for (const key of Object.keys(counters) as Array<keyof LaneCounters>)
        this.#retired[key] += counters[key]
      this.#lanes.splice(i, 1)
    }
  }

  /** ok / degraded / down, with the reasons. */
  health(): Health {
    const reasons: string[] = []
    if (this.#lifecycle === 'down') {
      const failedStart = this.#downError !== undefined && !(this.#downError instanceof PipelineDownError)
      return {
        status: 'down',
        reasons: [failedStart ? `start failed: ${this.#downError!.message}` : 'pipeline thread died'],
      }
    }
    // (Nothing is delivered until the configuration is fixed: down, though the queue still takes items.)
    const misconfigured = this.#misconfigured
    if (misconfigured && this.#lifecycle === 'running') {
      reasons.push(`sender misconfigured: ${misconfigured.message}`)
    }
    if (this.#lifecycle === 'stopped' || this.#lifecycle === 'stopping') {
      return { status: 'down', reasons: ['queue stopped'] }
    }
    if (this.#lifecycle === 'created') reasons.push('not started')
    const m = this.metrics()
    if (this.#backpressure || m.backoffMs > 0)
      reasons.push(`backpressure: producers slowed by ${m.backoffMs} ms`)
    if (m.circuitState !== 'closed') reasons.push(`circuit ${m.circuitState}`)
    if (m.retryingBatches > 0) reasons.push(`${m.retryingBatches} batch(es) failing and being retried`)
    if (m.walFull) reasons.push('write-ahead log at wal.maxBytes')
    if (m.recovering) reasons.push('re-delivering what the write-ahead log held at start')
    const dlf = this.#deadLetterFileFailing
    if (dlf)
      reasons.push(
        `deadLetterFile cannot be written (${dlf.code}): ${dlf.items} dead-lettered item(s) waiting`,
      )
    let down = misconfigured !== undefined && this.#lifecycle === 'running'
    for (const c of this.#walConditions.values()) {
      reasons.push(c.reason)
      down ||= c.status === 'down'
    }
    return { status: down ? 'down' : reasons.length > 0 ? 'degraded' : 'ok', reasons }
  }

  /** `await using queue = createQueue(...)` stops the queue at scope exit. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }
}

/**
 * Why start() failed, from the pipeline thread's fatal error: what the sender
 * thread reported as its load failure keeps its class (InvalidConfigError,
 * SenderLoadError) and its cause; anything else is PipelineDownError.
 */
function startFailure(fatal: ErrorInfo | Error | undefined, code: number): Error {
  if (fatal === undefined || fatal instanceof Error) {
    return new PipelineDownError(`The pipeline thread failed to start: ${fatal?.message ?? `exit ${code}`}`, {
      cause: fatal,
    })
  }
  const cause = fatal.cause ? errorFromInfo(fatal.cause) : undefined
  if (fatal.code === 'VQ_INVALID_CONFIG') {
    // A sender that lists what it refused (the validation kit of @vinequeue/core/sender) names
    // each option as the queue's; a bare TypeError/RangeError is one issue, the message.
    const issues = fatal.cause?.issues?.map((issue) => `sender.options.${issue}`) ?? [fatal.message]
    return new InvalidConfigError(fatal.message, { cause, issues })
  }
  if (fatal.code === 'VQ_SENDER_LOAD')
    return new SenderLoadError(fatal.message, { cause, module: fatal.module })
  return new PipelineDownError(`The pipeline thread failed to start: ${fatal.message}`, {
    cause: errorFromInfo(fatal),
  })
}

/** Validates `options` (one InvalidConfigError listing every bad field) and builds a queue. */
export function createQueue(options: QueueOptions): Queue {
  return new Queue(options)
}

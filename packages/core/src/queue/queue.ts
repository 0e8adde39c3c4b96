import { EventEmitter } from 'node:events'
import { Worker } from 'node:worker_threads'
import { Batch, concatBatches } from '../batch/batch-format.ts'
import { channels } from '../diagnostics.ts'
import { PipelineDownError, QueueClosedError } from '../errors.ts'
import { createMetricsBuffer } from '../metrics/layout.ts'
import {
  type ErrorInfo,
  PIPELINE_CONFIG_KEYS,
  type PipelineConfig,
  type PipelineToHost,
  type PipelineWorkerData,
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
import { finishedLaneCounters, type LaneCounters, readMetrics } from './metrics-reader.ts'
import { resolveOptions } from './options.ts'
import { collectLeftovers, makeStopReport } from './stop-report.ts'
import type {
  EnqueueAsyncOptions,
  Health,
  HealthStatus,
  Metrics,
  QueueEvents,
  QueueOptions,
  ResolvedOptions,
  StopReport,
} from './types.ts'

type Lifecycle = 'created' | 'starting' | 'running' | 'stopping' | 'stopped' | 'down'

/**
 * A VineQueue. Enqueue on this thread (or on producer threads through
 * `producerPort()`); a pipeline thread batches and a sender delivers.
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
  }
  /** The pipeline's batch slabs by uid, read back if the pipeline thread dies. */
  readonly #slabs = new Map<number, SharedArrayBuffer>()
  readonly #producer: Producer
  readonly #requests = new Map<number, { resolve: () => void; reject: (e: Error) => void }>()
  #nextRequest = 1
  #worker: Worker | undefined
  #lifecycle: Lifecycle = 'created'
  #startPromise: Promise<void> | undefined
  #stopPromise: Promise<StopReport> | undefined
  #onStopped: ((msg: Extract<PipelineToHost, { type: 'stopped' }>) => void) | undefined
  #downError: Error | undefined
  #backpressure = false
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
   * Idempotent.
   */
  start(): Promise<void> {
    if (this.#startPromise) return this.#startPromise
    if (this.#lifecycle !== 'created') return Promise.reject(this.#closedError())
    this.#lifecycle = 'starting'
    this.#startPromise = new Promise<void>((resolve, reject) => {
      const o = this.options
      const workerData: PipelineWorkerData = {
        control: this.#control,
        metrics: this.#metrics,
        lanes: [...this.#lanes],
        config: Object.fromEntries(
          Object.keys(PIPELINE_CONFIG_KEYS).map((key) => [key, o[key as keyof PipelineConfig]]),
        ) as PipelineConfig,
      }
      const worker = new Worker(new URL('../pipeline/entry.js', import.meta.url), {
        workerData,
        name: 'vinequeue-pipeline',
        execArgv: workerExecArgv(),
      })
      this.#worker = worker
      pipelineWorkers.set(this, worker)
      let fatal: Error | undefined
      worker.on('message', (msg: PipelineToHost) => {
        if (msg.type === 'ready') {
          for (const { uid, sab } of msg.slabs) this.#slabs.set(uid, sab)
          // stop() may have been called while starting: it stays stopping.
          if (this.#lifecycle === 'starting') {
            this.#lifecycle = 'running'
            Atomics.store(this.#controlI32, ControlSlot.STATE, QueueState.RUNNING)
          }
          resolve()
          if (channels.start.hasSubscribers) channels.start.publish({ queue: this })
          return
        }
        if (msg.type === 'fatal') {
          fatal = errorFromInfo(msg.error)
          return
        }
        this.#onMessage(msg)
      })
      worker.on('error', (err) => {
        fatal = err
      })
      worker.on('exit', (code) => {
        if (this.#lifecycle === 'starting') {
          this.#lifecycle = 'down'
          Atomics.store(this.#controlI32, ControlSlot.STATE, QueueState.DOWN)
          reject(
            new PipelineDownError(
              `The pipeline thread failed to start: ${fatal?.message ?? `exit ${code}`}`,
              { cause: fatal },
            ),
          )
          return
        }
        if (this.#lifecycle === 'stopped' || this.#lifecycle === 'down') return
        this.#goDown(fatal ?? new Error(`pipeline thread exited with code ${code}`))
      })
    })
    return this.#startPromise
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
          channels.send.publish({ queue: this, batchId: msg.batchId, count: msg.count, attempt: msg.attempt })
        }
        runInThreadSend(msg, this.options, (result) => this.#worker?.postMessage(result))
        break
      case 'deadLetter': {
        const items = new Batch(msg.bytes, msg.count).items()
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
      case 'senderCloseError':
        this.#emitError(errorFromInfo(msg.error))
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
   * Waits for room instead of failing: slowed past the soft limit, and under
   * `block` waits up to `maxBlockMs` before BackpressureError.
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
      },
    }
  }

  #request(drain: boolean): Promise<void> {
    if (this.#lifecycle === 'created') {
      return Promise.reject(new Error('The queue is not started: call start() first'))
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
      return Promise.reject(new RangeError(`stop: timeoutMs must be a finite number ≥ 0 (got ${timeoutMs})`))
    }
    const prior = this.#lifecycle
    if (prior !== 'down') {
      this.#lifecycle = 'stopping'
      Atomics.store(this.#controlI32, ControlSlot.STATE, QueueState.CLOSED)
    }
    this.#producer.publish()
    this.#stopPromise = (async (): Promise<StopReport> => {
      let leftovers: Uint8Array = new Uint8Array(0)
      let count = 0
      let timedOut = false
      let walPendingItems = 0
      if (prior === 'starting') await this.#startPromise?.catch(() => undefined)
      if (this.#worker && this.#lifecycle === 'stopping') {
        const stopped = await new Promise<Extract<PipelineToHost, { type: 'stopped' }> | undefined>(
          (resolve) => {
            this.#onStopped = resolve
            this.#worker!.once('exit', () => resolve(undefined))
            this.#worker!.postMessage({ __vq: 1, type: 'stop', timeoutMs })
          },
        )
        if (stopped) {
          leftovers = stopped.leftovers
          count = stopped.count
          timedOut = stopped.timedOut
          walPendingItems = stopped.walPendingItems
        }
        if (this.#lifecycle === 'stopping') this.#lifecycle = 'stopped'
        await this.#worker.terminate()
      }
      // The pipeline is gone (stopped, died or never started): this thread is
      // now the only consumer, so it collects whatever is still in the lanes
      // and — after a crash — in the shared batch slabs.
      const rest = collectLeftovers(this.#lanes, this.#lifecycle === 'down' ? [...this.#slabs.values()] : [])
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
    if (this.#lifecycle === 'down') return { status: 'down', reasons: ['pipeline thread died'] }
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
    let down = false
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

/** An Error rebuilt from another thread's summary. */
function errorFromInfo(info: ErrorInfo): Error {
  return Object.assign(new Error(info.message), {
    name: info.name,
    ...(info.code === undefined ? {} : { code: info.code }),
  })
}

/** Validates `options` (one InvalidConfigError listing every bad field) and builds a queue. */
export function createQueue(options: QueueOptions): Queue {
  return new Queue(options)
}

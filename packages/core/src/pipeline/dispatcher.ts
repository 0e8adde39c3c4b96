import type { TransferListItem } from 'node:worker_threads'
import { compactRecords, extractRecords } from '../batch/batch-format.ts'
import { ErrorCodes } from '../errors.ts'
import { MetricSlot } from '../metrics/layout.ts'
import type { MetricsWriter } from '../metrics/writer.ts'
import type { ItemFailure } from '../sender/types.ts'
import type { SenderThreadPort } from '../sender-pool/protocol.ts'
import { CircuitBreaker, type CircuitStateName } from './circuit-breaker.ts'
import type { Flight } from './flight.ts'
import { HostTransport } from './host-transport.ts'
import { isBackPressure, splitOutcome } from './outcome-split.ts'
import { PoolTransport } from './pool-transport.ts'
import type { ErrorInfo, PipelineConfig, PipelineToHost, PipelineWorkerData } from './protocol.ts'
import { retryDecision } from './retry-policy.ts'
import { SlabState } from './slab-pool.ts'
import type { Transport } from './transport.ts'

/** What the dispatcher tells its owner (the pipeline). */
export interface DispatcherHooks {
  /** Posts a message to the host (sends for an in-thread sender, dead letters, circuit and misconfiguration reports). */
  post(msg: PipelineToHost, transfer?: TransferListItem[]): void
  /** The batch is done with (delivered, or dead-lettered): its slab may be released. */
  settled(flight: Flight): void
  /** Every attempt's outcome: its latency (ms), whether the whole batch was delivered, whether the target pushed back. */
  outcome(latencyMs: number, success: boolean, backPressure: boolean): void
  /** A batch is waiting to be retried. */
  retrying(): void
  /** The circuit breaker changed state. */
  circuit(state: CircuitStateName): void
  /** Items given up on (before the host hears of them): `bytes` holds their records. */
  deadLetter(bytes: Uint8Array, count: number, reason: string, attempts: number): void
}

/**
 * Sends batches (flights: a record beside each slab) and decides what happens to each outcome: settle,
 * retry the failed part after a backoff (retry-policy.ts), or dead-letter
 * (outcome-split.ts). Attempts run on a transport: the sender pool for
 * module senders, the host's in-thread `send` otherwise. While the circuit
 * breaker refuses sends, batches are parked and go out when it lets them.
 */
export class Dispatcher {
  readonly #config: PipelineConfig
  readonly #metrics: MetricsWriter
  readonly #hooks: DispatcherHooks
  readonly #transport: Transport
  /** The transport, when sends run on the host's thread (its answers come through hostResult). */
  readonly #host: HostTransport | undefined
  /** The transport, when sends run on sender threads (module senders). */
  readonly #pool: PoolTransport | undefined
  readonly #retryTimers = new Set<NodeJS.Timeout>()
  readonly #breaker: CircuitBreaker | undefined
  /** Batches due to be sent while the circuit does not allow it, oldest first. */
  readonly #parked: Flight[] = []
  #unparkTimer: NodeJS.Timeout | undefined
  #closed = false
  /** The last send failed `misconfigured` and none has succeeded since. */
  #misconfigured = false

  /** `senders`: the sender threads the queue's thread started (module senders). */
  constructor(
    config: PipelineConfig,
    metrics: MetricsWriter,
    senders: PipelineWorkerData['senders'],
    hooks: DispatcherHooks,
  ) {
    this.#config = config
    this.#metrics = metrics
    this.#hooks = hooks
    if (config.circuitBreaker) {
      this.#breaker = new CircuitBreaker(config.circuitBreaker, (state) => {
        this.#metrics.add(MetricSlot.CIRCUIT_TRANSITIONS, 1)
        if (state === 'open') this.#metrics.add(MetricSlot.CIRCUIT_OPENS, 1)
        hooks.circuit(state)
      })
    }
    const onResult = (
      flight: Flight,
      startedAt: number,
      failed: readonly ItemFailure[] | undefined,
      error: ErrorInfo | undefined,
    ): void => this.#outcome(flight, startedAt, failed, error)
    if (config.sender) {
      if (!senders) throw new Error('pipeline: a module sender without sender threads')
      this.#pool = new PoolTransport(
        { ...config, sender: config.sender },
        metrics,
        onResult,
        senders,
        (threadId) => hooks.post({ __vq: 1, type: 'terminateSender', threadId }),
      )
      this.#transport = this.#pool
    } else {
      this.#host = new HostTransport(hooks.post, metrics, onResult)
      this.#transport = this.#host
    }
  }

  /** A sender thread started in place of one that exited. */
  addSenderThread(thread: SenderThreadPort): void {
    if (this.#pool) this.#pool.addThread(thread)
    else thread.port.close()
  }

  /**
   * Sends (or re-sends) a batch, or parks it while the circuit is
   * open (it goes out when the circuit half-opens or closes).
   */
  send(flight: Flight): void {
    if (this.#closed) return
    const permit = this.#breaker?.acquire() ?? true
    if (permit === false) return this.#park(flight)
    this.#attempt(flight, permit === 'probe')
  }

  /** Batches parked by the circuit breaker. */
  get parked(): number {
    return this.#parked.length
  }

  #park(flight: Flight): void {
    this.#parked.push(flight)
    flight.slab.setState(SlabState.IN_FLIGHT, flight.id)
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
  #attempt(flight: Flight, probe: boolean): void {
    flight.probe = probe
    if (probe) this.#metrics.add(MetricSlot.CIRCUIT_PROBES, 1)
    flight.attempt++
    if (flight.firstSentAt === 0) flight.firstSentAt = performance.now()
    const startedAt = performance.now()
    flight.slab.setState(SlabState.IN_FLIGHT, flight.id)
    this.#metrics.add(MetricSlot.IN_FLIGHT_BATCHES, 1)
    this.#transport.send(flight, startedAt)
  }

  /** The host's answer for an in-thread send. */
  hostResult(
    batchId: number,
    attempt: number,
    failed?: readonly ItemFailure[],
    error?: ErrorInfo,
    abandoned?: boolean,
  ): void {
    this.#host?.result(batchId, attempt, failed, error, abandoned)
  }

  #outcome(flight: Flight, startedAt: number, failed?: readonly ItemFailure[], error?: ErrorInfo): void {
    if (this.#closed) return
    const slab = flight.slab
    this.#metrics.add(MetricSlot.IN_FLIGHT_BATCHES, -1)
    const latency = performance.now() - startedAt
    this.#metrics.recordLatency(latency)
    this.#hooks.outcome(latency, !error && !failed?.length, isBackPressure(failed, error))
    if (this.#breaker) {
      // The target is unwell if it failed the whole batch with a retryable error.
      this.#breaker.record(error !== undefined && error.retryable !== false, flight.probe)
      flight.probe = false
      if (this.#parked.length > 0) queueMicrotask(() => this.#unpark())
    }
    this.#noteMisconfigured(error)
    const split = splitOutcome(slab.count, failed, error)
    switch (split.kind) {
      case 'delivered':
        this.#metrics.add(MetricSlot.SENT, slab.count)
        this.#metrics.add(MetricSlot.BATCHES_SENT, 1)
        return this.#hooks.settled(flight)
      case 'failed':
        this.#metrics.add(MetricSlot.ERRORS, 1)
        // A sender bug, not a target failure: retried like one, and reported.
        if (error!.code === ErrorCodes.INVALID_SEND_RESULT)
          this.#hooks.post({ __vq: 1, type: 'invalidSendResult', error: error! })
        if (split.permanent) return this.#deadLetterAll(flight, split.reason)
        return this.#retryOrGiveUp(flight, split.reason, split.retryAfterMs)
      case 'partial': {
        // Deliver-count the rest, dead-letter permanent ones, retry the others.
        this.#metrics.add(MetricSlot.ERRORS, 1)
        this.#metrics.add(MetricSlot.SENT, split.delivered)
        for (const { reason, indexes } of split.deadLetters) {
          this.#deadLetter(extractRecords(slab.view(), indexes), indexes.length, reason, flight.attempt)
        }
        if (split.retry.length === 0) {
          this.#metrics.add(MetricSlot.BATCHES_SENT, 1)
          return this.#hooks.settled(flight)
        }
        slab.bytes = compactRecords(slab.view(), split.retry)
        slab.count = split.retry.length
        slab.setState(SlabState.IN_FLIGHT, flight.id)
        return this.#retryOrGiveUp(flight, split.retryReason, split.retryAfterMs)
      }
      default: {
        const never: never = split
        throw new TypeError(`dispatcher: unknown outcome ${JSON.stringify(never)}`)
      }
    }
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
      if (!this.#misconfigured) this.#hooks.post({ __vq: 1, type: 'misconfigured', error })
      this.#misconfigured = true
    } else if (!error && this.#misconfigured) {
      this.#misconfigured = false
      this.#hooks.post({ __vq: 1, type: 'misconfigured' })
    }
  }

  /** Retries after the policy's backoff, or dead-letters the batch when the policy gives up. */
  #retryOrGiveUp(flight: Flight, reason: string, retryAfterMs?: number): void {
    const decision = retryDecision(
      this.#config,
      flight.attempt,
      performance.now() - flight.firstSentAt,
      reason,
      retryAfterMs,
    )
    if (!decision.retry) return this.#deadLetterAll(flight, decision.reason)
    this.#metrics.add(MetricSlot.RETRIES, 1)
    flight.retrying = true
    this.#hooks.retrying()
    const timer = setTimeout(() => {
      this.#retryTimers.delete(timer)
      this.send(flight)
    }, decision.delayMs)
    this.#retryTimers.add(timer)
  }

  #deadLetterAll(flight: Flight, reason: string): void {
    this.#deadLetter(flight.slab.view().slice(), flight.slab.count, reason, flight.attempt)
    this.#hooks.settled(flight)
  }

  #deadLetter(bytes: Uint8Array, count: number, reason: string, attempts: number): void {
    this.#metrics.add(MetricSlot.DEAD_LETTERED, count)
    this.#hooks.deadLetter(bytes, count, reason, attempts)
    this.#hooks.post({ __vq: 1, type: 'deadLetter', bytes, count, reason, attempts }, [
      bytes.buffer as ArrayBuffer,
    ])
  }

  /**
   * Stops retrying and sending; closes the transport (sender threads close
   * their senders within `closeTimeoutMs`, then the pool shuts, terminating
   * in-flight sends). Resolves with the errors the senders' close() threw.
   * Idempotent.
   */
  async close(closeTimeoutMs: number): Promise<ErrorInfo[]> {
    if (this.#closed) return []
    this.#closed = true
    for (const t of this.#retryTimers) clearTimeout(t)
    this.#retryTimers.clear()
    clearTimeout(this.#unparkTimer)
    this.#parked.length = 0
    return this.#transport.close(closeTimeoutMs)
  }
}

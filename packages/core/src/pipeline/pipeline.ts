import { setImmediate as yieldToLoop } from 'node:timers/promises'
import type { TransferListItem } from 'node:worker_threads'
import { concatBatches } from '../batch/batch-format.ts'
import { MetricSlot } from '../metrics/layout.ts'
import type { MetricsWriter } from '../metrics/writer.ts'
import { LaneReader } from '../ring/lane-reader.ts'
import { ControlSlot, Doorbell, RejectReason, recordSize } from '../ring/layout.ts'
import { AdaptiveBatchSize } from './adaptive-batch-size.ts'
import { AdaptiveConcurrency } from './adaptive-concurrency.ts'
import { BatchCutter } from './batch-cutter.ts'
import { CircuitCode } from './circuit-breaker.ts'
import { DeadLetterFile } from './dead-letter-file.ts'
import { Dispatcher } from './dispatcher.ts'
import { type Flight, newFlight } from './flight.ts'
import { type FlushContext, FlushRequests } from './flush-requests.ts'
import { InFlightWindow } from './in-flight-window.ts'
import type { OpenedLog } from './log-open.ts'
import type { HostToPipeline, PipelineConfig, PipelineToHost, PipelineWorkerData } from './protocol.ts'
import { type Slab, SlabPool, SlabState } from './slab-pool.ts'
import type { StartUp } from './start-up.ts'
import type { WalBacklog } from './wal-backlog.ts'

/** How long the pipeline lets a trickle of records accumulate before draining again (ms). */
const ACCUMULATE_MS = 1

/** With every slab taken and a lane not yet full enough to spill, how often the pipeline looks again (ms). */
const SPILL_POLL_MS = 5

/**
 * With every slab taken (a stalled target) the lanes fill while this thread
 * sleeps until an ack: it looks at them this often (ms) so that the
 * `backpressure` event still reports a lane passing the soft limit.
 */
const GAUGE_POLL_MS = 100

/** The batch being filled: its slab, when its first record came, whether it is for the WAL's backlog (spill). */
interface OpenBatch {
  readonly slab: Slab
  /** performance.now() of the first record (for the linger deadline). */
  openedAt: number
  /** The slab collects a batch for the WAL's backlog, not for sending. */
  readonly spill: boolean
}

/**
 * The pipeline thread's work: drain every lane into pooled slabs, cut
 * batches (count, bytes, linger, flush, stop), hand them to the dispatcher,
 * and answer flush/drain/stop. Sleeps on the control block's doorbell when
 * there is nothing to do (an idle queue burns no CPU).
 *
 * Batches between cut and settlement are the in-flight window's
 * (in-flight-window.ts), flush()/drain() the flush requests'
 * (flush-requests.ts), sends the dispatcher's, the log the WAL backlog's
 * (wal-backlog.ts). What is left here (about 550 lines, 28 private fields)
 * is the drain loop itself: its passes, the lanes and the open batch, the
 * choice of slab (pool or spill) and the cut, the doorbell sleep, the
 * gauges and stop. Each pass reads most of that state together (drain,
 * cut, sleep and stop all look at the lanes, the open batch, the window
 * and the log), so splitting it further would pass the same fields back
 * and forth.
 */
export class Pipeline {
  readonly #control: Int32Array
  readonly #metrics: MetricsWriter
  readonly #lanes: LaneReader[]
  readonly #cutter: BatchCutter
  readonly #adaptive: AdaptiveBatchSize | undefined
  /** Adaptive request concurrency: the limit on batches in flight, when on. */
  readonly #concurrency: AdaptiveConcurrency | undefined
  readonly #slabs: SlabPool
  readonly #dispatcher: Dispatcher
  readonly #post: (msg: PipelineToHost, transfer?: TransferListItem[]) => void
  readonly #softLimit: number
  /** Lane fill (ratio) where batches start to spill to the WAL when no slab is free. */
  readonly #spillFill: number
  /** Batches cut and not settled; those waiting for an in-flight slot (at most one with the slab count used). */
  readonly #window: InFlightWindow<Flight>
  readonly #requests = new FlushRequests()
  readonly #flushContext: FlushContext
  /** The WAL's side of the pipeline, once opened (with a WAL). */
  #wal: WalBacklog | undefined
  readonly #walConfig: PipelineConfig['wal']
  /** The one slab that collects batches for the WAL's backlog (shared, so the host sees it if this thread dies). */
  readonly #spillSlabs: SlabPool | undefined
  readonly #deadLetterFile: DeadLetterFile | undefined
  #current: OpenBatch | undefined
  #nextId = 1
  /**
   * This run's random id: the scope of `batch.key` for batches the log does
   * not hold (their `batch.id`, minus the cut id, starts over every run).
   */
  readonly #runId: string
  /** Gives the next cut id (for batches read back from the WAL). */
  readonly #takeId = (): number => this.#nextId++
  #stopDeadline: number | undefined
  /** The last drain found a lane under pressure (see #drain). */
  #pressed = false
  /** The last drain stopped because no slab could be opened (see #open). */
  #drainBlocked = false
  /** The open batch could not be cut: the WAL is full (it stays open until there is room). */
  #cutRefused = false
  #backpressure = false
  #done = false
  /** Set until the host says `started`: a stop before then abandons the start (see run). */
  #startGate: ((how: 'started' | 'aborted') => void) | undefined
  /** The log opened before `ready`, until run() hands it to the WAL stage. */
  #openedLog: OpenedLog | undefined

  /** `opened`: what was opened before `ready` (start-up.ts). */
  constructor(
    data: PipelineWorkerData,
    post: (msg: PipelineToHost, transfer?: TransferListItem[]) => void,
    opened: StartUp,
  ) {
    const { config } = data
    this.#runId = data.runId
    this.#post = post
    this.#control = new Int32Array(data.control)
    this.#metrics = opened.metrics
    this.#openedLog = opened.log
    this.#lanes = data.lanes.map((sab) => new LaneReader(sab))
    this.#cutter = new BatchCutter(config)
    this.#softLimit = config.softLimit
    this.#spillFill = (config.softLimit + config.hardLimit) / 2
    this.#walConfig = config.wal
    if (config.adaptiveBatching) {
      this.#adaptive = new AdaptiveBatchSize(config.adaptiveBatching, config.adaptiveBatching.minBatchSize)
      this.#cutter.maxBatchSize = this.#adaptive.size
    }
    this.#metrics.set(MetricSlot.BATCH_SIZE, this.#cutter.maxBatchSize)
    if (config.adaptiveConcurrency) {
      this.#concurrency = new AdaptiveConcurrency(config.adaptiveConcurrency, config.maxInFlightBatches)
    }
    this.#window = new InFlightWindow(config.maxInFlightBatches, this.#concurrency, (flight) =>
      this.#dispatcher.send(flight),
    )
    this.#metrics.set(MetricSlot.CONCURRENCY_LIMIT, this.#window.limit)
    // One slab per batch in flight plus one being filled (or cut and waiting
    // for an in-flight slot): with none free, the pipeline stops draining.
    const slabBytes = Math.max(config.maxBatchBytes, recordSize(config.maxItemBytes))
    const onNew = (slab: Slab): void =>
      this.#post({ __vq: 1, type: 'newSlab', uid: slab.uid, slab: slab.sab })
    const onRetire = (slab: Slab): void => this.#post({ __vq: 1, type: 'retiredSlab', uid: slab.uid })
    this.#slabs = new SlabPool(config.maxInFlightBatches + 1, slabBytes, onNew, onRetire)
    if (config.wal) this.#spillSlabs = new SlabPool(1, slabBytes, onNew, onRetire)
    if (config.deadLetterFile) {
      const path = config.deadLetterFile
      this.#deadLetterFile = new DeadLetterFile(
        path,
        opened.deadLetterFd!,
        config.wal?.syncMode === 'always',
        (report) => this.#post({ __vq: 1, type: 'deadLetterFile', path, ...report }),
      )
    }
    this.#dispatcher = new Dispatcher(config, this.#metrics, data.senders, {
      post,
      settled: (flight) => this.#settled(flight),
      outcome: (ms, success, backPressure) => {
        if (this.#adaptive) {
          this.#cutter.maxBatchSize = this.#adaptive.record(ms)
          this.#metrics.set(MetricSlot.BATCH_SIZE, this.#cutter.maxBatchSize)
        }
        if (this.#concurrency?.settled(ms, success, backPressure)) {
          this.#metrics.set(MetricSlot.CONCURRENCY_LIMIT, this.#concurrency.limit)
          queueMicrotask(() => this.#window.dispatch()) // (after the settled batch frees its place)
        }
      },
      retrying: () => this.kick(),
      circuit: (state) => {
        Atomics.store(this.#control, ControlSlot.CIRCUIT, CircuitCode[state])
        if (config.circuitBreaker && config.circuitBreaker.whileOpen === 'reject') {
          this.#setReject(RejectReason.CIRCUIT_OPEN, state !== 'closed')
        }
        this.#post({ __vq: 1, type: 'circuit', state })
        this.kick()
      },
      deadLetter: (bytes, count, reason, attempts) =>
        this.#deadLetterFile?.write(bytes, count, reason, attempts),
    })
    this.#flushContext = {
      isLive: (lane) => this.#lanes.includes(lane),
      cut: () => this.#cut(),
      lastCutId: () => this.#nextId - 1,
      walNextSeq: () => this.#wal?.nextSeq,
      handedOver: (target) => {
        // Every batch up to the target handed to a sender or durable in the
        // WAL (none waiting for an in-flight slot or the commit).
        this.#wal?.spillWaitingUpTo(target, (slab) => this.#slabs.release(slab))
        // (A batch waiting for a slot that the WAL already holds, synced, is durable.)
        const handedOver = (s: { id: number; walSeq?: number | undefined }): boolean =>
          s.id > target || s.walSeq !== undefined
        return this.#window.everyWaiting(handedOver) && (this.#wal?.everyUnsynced(handedOver) ?? true)
      },
      // Every batch up to the target settled, the WAL's backlog included.
      settled: (target, walTarget) =>
        !this.#window.hasUnsettledUpTo(target) &&
        (walTarget === undefined || this.#wal!.settledUpTo(walTarget)),
      done: (id) => this.#post({ __vq: 1, type: 'flushed', id }),
    }
  }

  #setReject(bit: number, on: boolean): void {
    if (on) Atomics.or(this.#control, ControlSlot.REJECT, bit)
    else Atomics.and(this.#control, ControlSlot.REJECT, ~bit)
  }

  /**
   * Waits for the host's `started` (start() resolved: the log is open and a
   * sender built), then runs until stopped. A stop before then (the host's
   * start timed out, or the sender could not be built) abandons the start:
   * nothing was drained or sent.
   */
  async run(): Promise<void> {
    const gate = new Promise<'started' | 'aborted'>((resolve) => {
      this.#startGate = resolve
    })
    // The slabs, for the host to read back what they hold if this thread dies.
    for (const slab of this.#slabs.all)
      this.#post({ __vq: 1, type: 'newSlab', uid: slab.uid, slab: slab.sab })
    // Opening the WAL scanned only its last segment; older ones are read as
    // they are re-delivered (recovery runs in this loop, start() does not
    // wait for it).
    if (this.#openedLog) {
      const { WalBacklog } = await import('./wal-backlog.ts')
      const reject = this.#walConfig!.fullPolicy === 'reject'
      this.#wal = new WalBacklog(this.#walConfig!, this.#openedLog, this.#metrics, this.#window, {
        event: (e) => this.#post({ __vq: 1, type: 'wal', ...e }),
        kick: () => this.kick(),
        fullChanged: (full) => {
          if (reject) this.#setReject(RejectReason.WAL_FULL, full)
          this.#post({ __vq: 1, type: 'wal', event: full ? 'full' : 'room' })
        },
      })
      this.#openedLog = undefined
    }
    if ((await gate) === 'aborted') return this.#abandonStart()
    // (Producers do not need the slabs faulted in: start() does not wait for it.)
    this.#slabs.prefault()
    this.#spillSlabs?.prefault()
    while (!this.#done) {
      const cutBefore = this.#nextId
      const loaded = this.#wal?.load(this.#slabs, this.#takeId) ?? false
      const progressed = this.#drain() || loaded
      this.#lingerCheck()
      this.#wal?.commit() // (batches now durable may go, and flushes waiting for them resolve)
      this.#requests.service(this.#flushContext)
      this.#wal?.commit()
      this.#wal?.settle()
      if (this.#wal?.full) this.#wal.hasRoom(this.#current?.spill ? this.#current.slab.bytes : 0)
      this.#updateGauges()
      if (this.#stopDeadline !== undefined) {
        if (this.#allDelivered()) return this.#finishStop(false)
        if (performance.now() >= this.#stopDeadline) return this.#finishStop(true)
      }
      // Slots freed by an acknowledgement this pass: the next pass fills them (the log's backlog).
      const freed = this.#wal?.takeFreed() ?? false
      if (!progressed && !freed) await this.#sleep(false)
      else if (
        freed ||
        this.#pressed ||
        this.#nextId !== cutBefore ||
        this.#requests.length > 0 ||
        this.#stopDeadline !== undefined
      ) {
        await yieldToLoop() // full batches flowing, a lane filling up, or someone waits: keep going
      } else await this.#sleep(true) // a trickle: let it accumulate
    }
  }

  onMessage(msg: HostToPipeline): void {
    switch (msg.type) {
      case 'addLane':
        this.#lanes.push(new LaneReader(msg.lane))
        break
      case 'flush':
        this.#requests.add(msg.id, msg.drain, this.#lanes)
        break
      case 'started':
        this.#startGate?.('started')
        this.#startGate = undefined
        break
      case 'stop':
        this.#stopDeadline = performance.now() + msg.timeoutMs
        this.#startGate?.('aborted')
        this.#startGate = undefined
        break
      case 'senderThread':
        this.#dispatcher.addSenderThread(msg.thread)
        break
      case 'sendResult':
        this.#dispatcher.hostResult(msg.batchId, msg.attempt, msg.failed, msg.error, msg.abandoned)
        break
      default: {
        const never: never = msg
        throw new TypeError(`pipeline: unknown message ${JSON.stringify(never)}`)
      }
    }
    this.kick()
  }

  /** Wakes the loop if it sleeps (called on this thread: messages, acks, timers). */
  kick(): void {
    if (Atomics.exchange(this.#control, ControlSlot.DOORBELL, Doorbell.AWAKE) !== Doorbell.AWAKE) {
      Atomics.notify(this.#control, ControlSlot.DOORBELL)
    }
  }

  /**
   * One pass over every lane, repeated while it makes progress and a slab is
   * free. Returns whether anything moved.
   */
  #drain(): boolean {
    let progressed = false
    let moved = true
    this.#pressed = false
    this.#drainBlocked = false
    while (moved) {
      moved = false
      for (let i = 0; i < this.#lanes.length; i++) {
        const lane = this.#lanes[i]!
        if (lane.isEmpty()) {
          if (lane.isFinished() && !this.#requests.holds(lane)) {
            this.#lanes.splice(i--, 1)
          }
          continue
        }
        const open = this.#current ?? this.#open(lane)
        if (!open) {
          this.#drainBlocked = true
          return progressed
        }
        const slab = open.slab
        const room = this.#cutter.room(slab.count, slab.bytes)
        // (Read before draining: a successful drain clears the flag as it notifies.)
        const waiter = lane.hasWaiter()
        let n = this.#drainLane(lane, slab, room)
        // -1: a dropOldest producer won the race for these records; try once more.
        if (n < 0) n = this.#drainLane(lane, slab, room)
        if (n > 0) {
          if (slab.count === 0) open.openedAt = performance.now()
          slab.count += n
          slab.bytes += lane.lastBytes
          moved = progressed = true
          // A lane an eighth full (or a producer waiting for room) is filling
          // faster than a 1 ms nap would allow: do not let it accumulate.
          if (waiter || lane.lastBytes * 8 >= lane.capacity) this.#pressed = true
        }
        const reason = this.#cutter.check(slab.count, open.openedAt, n === 0 && !lane.isEmpty())
        if (reason) this.#cut()
      }
    }
    return progressed
  }

  #drainLane(lane: LaneReader, slab: Slab, room: { items: number; bytes: number }): number {
    const n = lane.drainInto(
      slab.data,
      slab.bytes,
      room.bytes,
      room.items,
      slab.count === 0,
      (items, bytes) =>
        // The slab's new extent is in shared memory before the lane releases
        // the records: if this thread dies now the host finds them (twice at worst).
        slab.publishExtent(slab.count + items, slab.bytes + bytes),
    )
    if (n < 0) slab.publishExtent(slab.count, slab.bytes)
    return n
  }

  /**
   * The slab the next records go into. Without a WAL: a free slab or none
   * (the ring holds the records: backpressure). With one: the spill slab
   * while the log has a backlog (so batches reach the log in order), else a
   * free slab, else the spill slab once `lane` passes the soft limit or a
   * flush waits — unless the log is full under wal.fullPolicy block/reject.
   * (A stop does not spill: it collects what is in memory, logs it and
   * reports it.)
   */
  #open(lane: LaneReader): OpenBatch | undefined {
    const wal = this.#wal
    if (!wal || (!wal.behind && this.#slabs.available > 0)) {
      const slab = this.#slabs.acquire()
      this.#current = slab && { slab, openedAt: 0, spill: false }
      return this.#current
    }
    const pressed =
      wal.behind ||
      // Memory is full: the lane is past halfway from the soft to the hard limit (async
      // producers are being slowed down, sync ones are about to meet fullPolicy). Below
      // that the ring holds the records: a target that is only slower than the producers
      // is met with backpressure, not a disk round trip per batch.
      lane.usedBytes() >= lane.capacity * this.#spillFill ||
      lane.hasWaiter() ||
      // A flush waits and the target is not taking batches: make them durable instead.
      (this.#requests.flushWaiting && this.#targetStalled())
    if (!pressed) return undefined
    if (wal.refusesSpill) return undefined
    const slab = this.#spillSlabs!.acquire()
    this.#current = slab && { slab, openedAt: 0, spill: true }
    return this.#current
  }

  /** Batches are failing (retrying) or parked behind an open circuit. */
  #targetStalled(): boolean {
    return this.#dispatcher.parked > 0 || this.#window.anyRetrying()
  }

  /**
   * Cuts the open batch: sends it (WAL-first: logs it first), or, for the
   * backlog, logs it and frees the slab. Returns false when the batch must
   * stay open: the log is full and wal.fullPolicy does not drop.
   */
  #cut(): boolean {
    const open = this.#current
    if (!open || open.slab.count === 0) return true
    const slab = open.slab
    const wal = this.#wal
    if (wal && (open.spill || wal.behind)) {
      // For the backlog: the log keeps it (in order behind what it holds), the slab is free again.
      const id = this.#nextId
      if (!wal.toBacklog(slab, id)) {
        this.#cutRefused = true // the log is full (block / reject) or cannot be written now (ENOSPC, EIO)
        return false
      }
      this.#nextId++
      this.#cutRefused = false
      this.#current = undefined
      if (open.spill) this.#spillSlabs!.release(slab)
      else this.#slabs.release(slab)
      return true
    }
    let walSeq: number | undefined
    if (wal?.logsFirst) {
      walSeq = wal.appendSent(slab)
      if (walSeq === undefined) {
        this.#cutRefused = true // the log cannot be written now (ENOSPC, EIO): keep it in memory
        return false
      }
    }
    this.#cutRefused = false
    this.#current = undefined
    const flight = newFlight(this.#nextId++, slab, walSeq, walSeq === undefined ? this.#runId : wal!.logId)
    slab.setState(SlabState.IN_FLIGHT, flight.id)
    this.#window.add(flight)
    if (walSeq !== undefined) {
      wal!.awaitCommit(flight)
      return true
    }
    this.#window.enqueue(flight)
    this.#window.dispatch()
    return true
  }

  #lingerCheck(): void {
    const open = this.#current
    if (!open || open.slab.count === 0) return
    if (
      this.#stopDeadline !== undefined ||
      this.#cutter.check(open.slab.count, open.openedAt, false) === 'linger'
    ) {
      this.#cut()
    }
  }

  #settled(flight: Flight): void {
    // A batch the log holds (one with a walSeq) keeps its slot until its acknowledgement is written.
    this.#window.settle(flight, this.#wal !== undefined)
    this.#slabs.release(flight.slab)
    this.#window.dispatch()
    this.kick()
  }

  #updateGauges(): void {
    let items = this.#current?.slab.count ?? 0
    let retrying = 0
    for (const flight of this.#window.unsettled()) {
      items += flight.slab.count
      if (flight.retrying) retrying++
    }
    this.#metrics.set(MetricSlot.PIPELINE_ITEMS, items)
    this.#metrics.set(MetricSlot.RETRYING_BATCHES, retrying)
    let fill = 0
    for (const lane of this.#lanes) fill = Math.max(fill, lane.usedBytes() / lane.capacity)
    const active = this.#backpressure ? fill > this.#softLimit * 0.9 : fill > this.#softLimit
    if (active !== this.#backpressure) {
      this.#backpressure = active
      this.#post({ __vq: 1, type: 'backpressure', active })
    }
  }

  #allDelivered(): boolean {
    return (
      this.#window.size === 0 &&
      !this.#wal?.behind &&
      (this.#current?.slab.count ?? 0) === 0 &&
      this.#lanes.every((lane) => lane.isEmpty())
    )
  }

  /**
   * Sleeps until a producer rings (only when nothing was drained), a
   * message or ack kicks, the open batch lingers out, or — `accumulate` —
   * ACCUMULATE_MS pass. Accumulating while items trickle in keeps this
   * thread from spinning on a few records at a time (on 2 cores it shares
   * one with the sender threads) and spares producers a wake-up per publish.
   */
  async #sleep(accumulate: boolean): Promise<void> {
    const open = this.#current
    // (A batch waiting for room in the WAL is past its linger time: poll instead.)
    let timeout = this.#cutRefused
      ? SPILL_POLL_MS
      : this.#cutter.msUntilLinger(open?.slab.count ?? 0, open?.openedAt ?? 0)
    if (this.#stopDeadline !== undefined) timeout = Math.min(timeout, this.#stopDeadline - performance.now())
    if (accumulate) timeout = Math.min(timeout, ACCUMULATE_MS)
    if (this.#wal) {
      timeout = Math.min(timeout, this.#wal.dueInMs())
    }
    // Nowhere to drain to: every slab taken, or the open spill batch waits for room in a full WAL.
    const blocked = accumulate || this.#drainBlocked || this.#cutRefused
    // With a WAL, records waiting behind busy slabs may have to spill: look again soon.
    if (blocked && !accumulate && this.#wal && this.#lanes.some((lane) => !lane.isEmpty())) {
      timeout = Math.min(timeout, SPILL_POLL_MS)
    }
    if (blocked && !this.#backpressure && this.#lanes.some((lane) => !lane.isEmpty())) {
      timeout = Math.min(timeout, GAUGE_POLL_MS)
    }
    const value = blocked ? Doorbell.ASLEEP_FOR_ACKS : Doorbell.ASLEEP_WAKE_ME
    Atomics.store(this.#control, ControlSlot.DOORBELL, value)
    // Re-check after announcing sleep: a producer that published before it saw
    // the doorbell did not notify (ring/lane-writer.ts publish()).
    if (!blocked && this.#lanes.some((lane) => !lane.isEmpty())) {
      Atomics.store(this.#control, ControlSlot.DOORBELL, Doorbell.AWAKE)
      return yieldToLoop() // (never a pass without timers and messages in between)
    }
    if (timeout <= 0) {
      Atomics.store(this.#control, ControlSlot.DOORBELL, Doorbell.AWAKE)
      return yieldToLoop()
    }
    const res = Atomics.waitAsync(this.#control, ControlSlot.DOORBELL, value, timeout)
    if (res.async) await res.value
    Atomics.store(this.#control, ControlSlot.DOORBELL, Doorbell.AWAKE)
  }

  /**
   * Stopped before the host said `started`: nothing was drained or sent, so
   * there is nothing to deliver or log. Shuts the pool (its threads may be
   * stuck in the sender's factory: they are terminated), closes the log
   * (its lock released) and reports; the host collects what the lanes hold.
   */
  async #abandonStart(): Promise<void> {
    this.#done = true
    await this.#dispatcher.close(0)
    let walPendingItems = 0
    if (this.#wal) walPendingItems = this.#wal.abandon()
    this.#deadLetterFile?.close()
    const leftovers = new Uint8Array(0)
    this.#post({ __vq: 1, type: 'stopped', leftovers, count: 0, timedOut: false, walPendingItems })
  }

  /** Collects everything not delivered, shuts the pool and reports to the host. */
  async #finishStop(timedOut: boolean): Promise<void> {
    this.#done = true
    const left = this.#stopDeadline === undefined ? 0 : this.#stopDeadline - performance.now()
    const closeErrors = await this.#dispatcher.close(Math.max(1000, left))
    for (const error of closeErrors) this.#post({ __vq: 1, type: 'senderCloseError', error })
    const parts: Uint8Array[] = []
    let count = 0
    // Spill mode: batches sent from memory are not in the WAL yet.
    const notLogged: Array<{ bytes: Uint8Array; count: number }> = []
    for (const { slab, walSeq } of [...this.#window.unsettled()].sort((a, b) => a.id - b.id)) {
      parts.push(slab.view().slice())
      count += slab.count
      if (walSeq === undefined) notLogged.push({ bytes: slab.view(), count: slab.count })
    }
    // Not in the WAL yet: the open batch and whatever is still in the lanes.
    const fresh: Array<{ bytes: Uint8Array; count: number }> = []
    const open = this.#current?.slab
    if (open && open.count > 0) {
      fresh.push({ bytes: open.view().slice(), count: open.count })
    }
    for (const lane of this.#lanes) {
      const rest = lane.drainAll()
      if (rest.count > 0) fresh.push(rest)
    }
    for (const f of fresh) {
      parts.push(f.bytes)
      count += f.count
    }
    let walPendingItems = 0
    // Everything undelivered is left durable for the next start.
    if (this.#wal) walPendingItems = this.#wal.finish([...notLogged, ...fresh])
    this.#deadLetterFile?.close()
    const leftovers = concatBatches(parts)
    this.#post({ __vq: 1, type: 'stopped', leftovers, count, timedOut, walPendingItems }, [
      leftovers.buffer as ArrayBuffer,
    ])
  }
}

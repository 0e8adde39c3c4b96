import { setImmediate as yieldToLoop } from 'node:timers/promises'
import type { TransferListItem } from 'node:worker_threads'
import { concatBatches } from '../batch/batch-format.ts'
import { MetricSlot } from '../metrics/layout.ts'
import { MetricsWriter } from '../metrics/writer.ts'
import { LaneReader } from '../ring/lane-reader.ts'
import { ControlSlot, RejectReason, recordSize } from '../ring/layout.ts'
import { AdaptiveBatchSize } from './adaptive-batch-size.ts'
import { AdaptiveConcurrency } from './adaptive-concurrency.ts'
import { BatchCutter } from './batch-cutter.ts'
import { CircuitCode } from './circuit-breaker.ts'
import { DeadLetterFile } from './dead-letter-file.ts'
import { Dispatcher } from './dispatcher.ts'
import type { HostToPipeline, PipelineConfig, PipelineToHost, PipelineWorkerData } from './protocol.ts'
import { Slab, SlabPool, SlabState } from './slab-pool.ts'
import type { WalStage } from './wal-stage.ts'

/** DOORBELL values: see ring/layout.ts. 2 = asleep, but producers need not wake us. */
const ASLEEP_WAKE_ME = 1
const ASLEEP_FOR_ACKS = 2

/** How long the pipeline lets a trickle of records accumulate before draining again (ms). */
const ACCUMULATE_MS = 1

/** With every slab taken and a lane not yet full enough to spill, how often the pipeline looks again (ms). */
const SPILL_POLL_MS = 5

interface FlushRequest {
  readonly id: number
  readonly drain: boolean
  /** Lane write positions when the request arrived. */
  readonly marks: Map<LaneReader, number>
  /** Last batch id holding items from before the request, once known. */
  target?: number
  /** drain with a WAL: the log's next sequence number when the target was set. */
  walTarget?: number
}

/** A batch cut for the WAL's backlog: durable once the log's durableSeq reaches `end` (flush waits for that). */
interface SpillMark {
  readonly id: number
  readonly end: number
}

/**
 * The pipeline thread's work: drain every lane into pooled slabs, cut
 * batches (count, bytes, linger, flush, stop), hand them to the dispatcher,
 * and answer flush/drain/stop. Sleeps on the control block's doorbell when
 * there is nothing to do (an idle queue burns no CPU).
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
  /** Batches sent and not settled (in flight or waiting to retry), by id. */
  readonly #unsettled = new Map<number, Slab>()
  readonly #requests: FlushRequest[] = []
  /** Cut batches waiting for an in-flight slot (FIFO; at most one with the slab count used). */
  readonly #waiting: Slab[] = []
  /**
   * Cut batches appended to the WAL, waiting for the pass's commit: slabs
   * (WAL-first, sent after it) and spill marks (kept only by the log).
   */
  #unsynced: Array<Slab | SpillMark> = []
  #wal: WalStage | undefined
  readonly #walConfig: PipelineConfig['wal']
  /** The one slab that collects batches for the WAL's backlog (shared, so the host sees it if this thread dies). */
  readonly #spillSlabs: SlabPool | undefined
  #walFull = false
  readonly #deadLetterFile: DeadLetterFile | undefined
  /** Dispatched and not settled (in flight or waiting to retry). Bounded by maxInFlightBatches. */
  #inFlight = 0
  readonly #maxInFlight: number
  #current: Slab | undefined
  #nextId = 1
  #stopDeadline: number | undefined
  /** The last drain found a lane under pressure (see #drain). */
  #pressed = false
  /** The last drain stopped because no slab could be opened (see #open). */
  #drainBlocked = false
  /** The open batch could not be cut: the WAL is full (it stays open until there is room). */
  #cutRefused = false
  #backpressure = false
  #done = false
  /** Set until `ready` is posted: a stop before then abandons the start (see run). */
  #abortStart: (() => void) | undefined

  constructor(data: PipelineWorkerData, post: (msg: PipelineToHost, transfer?: TransferListItem[]) => void) {
    const { config } = data
    this.#post = post
    this.#control = new Int32Array(data.control)
    this.#metrics = new MetricsWriter(data.metrics)
    this.#lanes = data.lanes.map((sab) => new LaneReader(sab))
    this.#cutter = new BatchCutter(config)
    this.#softLimit = config.softLimit
    this.#spillFill = (config.softLimit + config.hardLimit) / 2
    this.#maxInFlight = config.maxInFlightBatches
    this.#walConfig = config.wal
    if (config.adaptiveBatching) {
      this.#adaptive = new AdaptiveBatchSize(config.adaptiveBatching, config.adaptiveBatching.minBatchSize)
      this.#cutter.maxBatchSize = this.#adaptive.size
    }
    this.#metrics.set(MetricSlot.BATCH_SIZE, this.#cutter.maxBatchSize)
    if (config.adaptiveConcurrency) {
      this.#concurrency = new AdaptiveConcurrency(config.adaptiveConcurrency, config.maxInFlightBatches)
    }
    this.#metrics.set(MetricSlot.CONCURRENCY_LIMIT, this.#concurrency?.limit ?? this.#maxInFlight)
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
      this.#deadLetterFile = new DeadLetterFile(path, config.wal?.syncMode === 'always', (report) =>
        this.#post({ __vq: 1, type: 'deadLetterFile', path, ...report }),
      )
    }
    this.#dispatcher = new Dispatcher(config, this.#metrics, {
      post,
      settled: (slab) => this.#settled(slab),
      outcome: (ms, success, backPressure) => {
        if (this.#adaptive) {
          this.#cutter.maxBatchSize = this.#adaptive.record(ms)
          this.#metrics.set(MetricSlot.BATCH_SIZE, this.#cutter.maxBatchSize)
        }
        if (this.#concurrency?.settled(ms, success, backPressure)) {
          this.#metrics.set(MetricSlot.CONCURRENCY_LIMIT, this.#concurrency.limit)
          queueMicrotask(() => this.#dispatchWaiting()) // (after the settled batch frees its place)
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
  }

  #setReject(bit: number, on: boolean): void {
    if (on) Atomics.or(this.#control, ControlSlot.REJECT, bit)
    else Atomics.and(this.#control, ControlSlot.REJECT, ~bit)
  }

  /** Loads the sender, announces readiness, then runs until stopped. */
  async run(): Promise<void> {
    // A stop that arrives before the sender is ready (the host's start timed
    // out, or stop() was called while starting) must not wait for it: a
    // sender factory may never settle.
    const aborted = new Promise<'aborted'>((resolve) => {
      this.#abortStart = () => resolve('aborted')
    })
    // The sender pool starts (and loads the sender module) while the WAL opens.
    const ready = this.#dispatcher.ready()
    ready.catch(() => {}) // (awaited below; not unhandled if opening the WAL throws first)
    // Opening the WAL scans only its last segment; older ones are read as
    // they are re-delivered (recovery runs in this loop, start() does not
    // wait for it). A failure to open fails start(). The WAL code (and its
    // native CRC module) is loaded only when there is a WAL.
    if (this.#walConfig) {
      const { WalStage } = await import('./wal-stage.ts')
      const fs = this.#walConfig.fs ? (await import(String(this.#walConfig.fs))).default : undefined
      this.#wal = new WalStage(
        this.#walConfig,
        this.#metrics,
        (e) => this.#post({ __vq: 1, type: 'wal', ...e }),
        () => this.kick(),
        fs,
      )
    }
    if ((await Promise.race([aborted, ready])) === 'aborted') return this.#abandonStart()
    this.#abortStart = undefined
    this.#post({ __vq: 1, type: 'ready', slabs: this.#slabs.all.map((s) => ({ uid: s.uid, sab: s.sab })) })
    while (!this.#done) {
      const cutBefore = this.#nextId
      const loaded = this.#loadBacklog()
      const progressed = this.#drain() || loaded
      this.#lingerCheck()
      this.#commit() // (batches now durable may go, and flushes waiting for them resolve)
      this.#serviceRequests()
      this.#commit()
      this.#wal?.settle(this.#lowestUnsettledWalSeq())
      if (this.#walFull) this.#walHasRoom(this.#current?.spill ? this.#current.bytes : 0)
      this.#updateGauges()
      if (this.#stopDeadline !== undefined) {
        if (this.#allDelivered()) return this.#finishStop(false)
        if (performance.now() >= this.#stopDeadline) return this.#finishStop(true)
      }
      if (!progressed) await this.#sleep(false)
      else if (
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
        this.#requests.push({
          id: msg.id,
          drain: msg.drain,
          marks: new Map(this.#lanes.map((lane) => [lane, lane.writePosition()])),
        })
        break
      case 'stop':
        this.#stopDeadline = performance.now() + msg.timeoutMs
        this.#abortStart?.()
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
    if (Atomics.exchange(this.#control, ControlSlot.DOORBELL, 0) !== 0) {
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
          if (lane.isFinished() && !this.#requests.some((r) => r.marks.has(lane))) {
            this.#lanes.splice(i--, 1)
          }
          continue
        }
        const slab = this.#current ?? this.#open(lane)
        if (!slab) {
          this.#drainBlocked = true
          return progressed
        }
        const room = this.#cutter.room(slab.count, slab.bytes)
        // (Read before draining: a successful drain clears the flag as it notifies.)
        const waiter = lane.hasWaiter()
        let n = this.#drainLane(lane, slab, room)
        // -1: a dropOldest producer won the race for these records; try once more.
        if (n < 0) n = this.#drainLane(lane, slab, room)
        if (n > 0) {
          if (slab.count === 0) slab.openedAt = performance.now()
          slab.count += n
          slab.bytes += lane.lastBytes
          moved = progressed = true
          // A lane an eighth full (or a producer waiting for room) is filling
          // faster than a 1 ms nap would allow: do not let it accumulate.
          if (waiter || lane.lastBytes * 8 >= lane.capacity) this.#pressed = true
        }
        const reason = this.#cutter.check(slab.count, slab.openedAt, n === 0 && !lane.isEmpty())
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
   * Reads the WAL's backlog back into free slabs and sends it, oldest first:
   * first what the log held at start (recovery), then what was spilled.
   */
  #loadBacklog(): boolean {
    const wal = this.#wal
    if (!wal?.behind) return false
    let loaded = false
    while (this.#slabs.available > 0 && this.#inFlight + this.#waiting.length < this.#maxInFlight) {
      const frame = wal.nextFrame()
      if (!frame) break
      const slab = this.#slabs.acquire(frame.payload.byteLength)!
      slab.data.set(frame.payload)
      slab.count = frame.count
      slab.bytes = frame.payload.byteLength
      slab.walSeq = frame.firstSeq
      slab.id = this.#nextId++
      slab.setState(SlabState.IN_FLIGHT)
      this.#unsettled.set(slab.id, slab)
      this.#waiting.push(slab)
      loaded = true
    }
    if (loaded) this.#dispatchWaiting()
    return loaded
  }

  /** WAL-first: one fsync for every batch cut this pass, then they may be sent. */
  #commit(): void {
    const wal = this.#wal
    if (!wal) return
    wal.commit()
    if (this.#unsynced.length === 0) return
    // Batches the log has made durable may go (in order); the rest wait for the next fdatasync.
    const durable = wal.durableSeq
    let n = 0
    for (const cut of this.#unsynced) {
      const end = cut instanceof Slab ? cut.walSeq + cut.count : cut.end
      if (end > durable) break
      if (cut instanceof Slab) this.#waiting.push(cut)
      n++
    }
    if (n === 0) return
    this.#unsynced.splice(0, n)
    this.#dispatchWaiting()
  }

  /** Sequence number of the oldest item the WAL must keep (undefined: none unsettled). */
  #lowestUnsettledWalSeq(): number | undefined {
    let low: number | undefined
    for (const slab of this.#unsettled.values()) {
      if (slab.walSeq >= 0 && (low === undefined || slab.walSeq < low)) low = slab.walSeq
    }
    return low
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
  #open(lane: LaneReader): Slab | undefined {
    const wal = this.#wal
    if (!wal || (!wal.behind && this.#slabs.available > 0)) {
      this.#current = this.#slabs.acquire()
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
      (this.#requests.some((r) => !r.drain) && this.#targetStalled())
    if (!pressed) return undefined
    const policy = this.#walConfig!.fullPolicy
    if (this.#walFull && (policy === 'block' || policy === 'reject')) return undefined
    const slab = this.#spillSlabs!.acquire()
    if (slab) slab.spill = true
    this.#current = slab
    return slab
  }

  /** Batches are failing (retrying) or parked behind an open circuit. */
  #targetStalled(): boolean {
    if (this.#dispatcher.parked > 0) return true
    for (const slab of this.#unsettled.values()) if (slab.retrying) return true
    return false
  }

  /**
   * Whether the log can take `bytes` more under wal.maxBytes (dropOldest
   * first drops what it may); tracks the full state (metric, event, reject).
   */
  #walHasRoom(bytes: number): boolean {
    const wal = this.#wal!
    const policy = this.#walConfig!.fullPolicy
    if (policy === 'dropOldest') while (wal.wouldOverflow(bytes) && this.#dropOldestSegment()) {}
    const full = wal.wouldOverflow(bytes)
    if (full !== this.#walFull) {
      this.#walFull = full
      this.#metrics.set(MetricSlot.WAL_FULL, full ? 1 : 0)
      if (policy === 'reject') this.#setReject(RejectReason.WAL_FULL, full)
      this.#post({ __vq: 1, type: 'wal', event: full ? 'full' : 'room' })
    }
    return !full
  }

  /**
   * wal.fullPolicy 'dropOldest': the oldest segment goes. Its unread items
   * are dropped (counted); batches from it already read back stay in memory
   * and are still delivered, but no longer hold the watermark (a crash now
   * loses them). Returns false when nothing could be dropped.
   */
  #dropOldestSegment(): boolean {
    const wal = this.#wal!
    const drop = wal.dropOldestSegment()
    if (!drop) return false
    for (const slab of this.#unsettled.values())
      if (slab.walSeq >= 0 && slab.walSeq < drop.end) slab.walSeq = -1
    wal.settle(this.#lowestUnsettledWalSeq(), true)
    return true
  }

  /**
   * Cuts the open batch: sends it (WAL-first: logs it first), or, for the
   * backlog, logs it and frees the slab. Returns false when the batch must
   * stay open: the log is full and wal.fullPolicy does not drop.
   */
  #cut(): boolean {
    const slab = this.#current
    if (!slab || slab.count === 0) return true
    const wal = this.#wal
    if (wal && (slab.spill || wal.behind)) {
      // For the backlog: the log keeps it (in order behind what it holds), the slab is free again.
      const id = this.#nextId
      if (!this.#toBacklog(slab, id)) {
        this.#cutRefused = true // the log is full (block / reject) or cannot be written now (ENOSPC, EIO)
        return false
      }
      this.#nextId++
      this.#cutRefused = false
      this.#current = undefined
      if (slab.spill) this.#spillSlabs!.release(slab)
      else this.#slabs.release(slab)
      return true
    }
    let walSeq = -1
    if (wal && this.#walConfig!.mode === 'first') {
      walSeq = wal.appendSent(slab.view(), slab.count)
      if (walSeq < 0) {
        this.#cutRefused = true // the log cannot be written now (ENOSPC, EIO): keep it in memory
        return false
      }
    }
    this.#cutRefused = false
    this.#current = undefined
    slab.id = this.#nextId++
    slab.setState(SlabState.IN_FLIGHT)
    this.#unsettled.set(slab.id, slab)
    if (walSeq >= 0) {
      slab.walSeq = walSeq
      this.#unsynced.push(slab)
      return true
    }
    this.#waiting.push(slab)
    this.#dispatchWaiting()
    return true
  }

  #dispatchWaiting(): void {
    const limit = this.#concurrency?.limit ?? this.#maxInFlight
    while (this.#waiting.length > 0 && this.#inFlight < limit) {
      this.#inFlight++
      this.#concurrency?.started(this.#inFlight)
      this.#dispatcher.send(this.#waiting.shift()!)
    }
  }

  #lingerCheck(): void {
    const slab = this.#current
    if (!slab || slab.count === 0) return
    if (
      this.#stopDeadline !== undefined ||
      this.#cutter.check(slab.count, slab.openedAt, false) === 'linger'
    ) {
      this.#cut()
    }
  }

  #settled(slab: Slab): void {
    this.#unsettled.delete(slab.id)
    this.#inFlight--
    this.#slabs.release(slab)
    this.#dispatchWaiting()
    this.kick()
  }

  #serviceRequests(): void {
    for (let i = 0; i < this.#requests.length; i++) {
      const req = this.#requests[i]!
      if (req.target === undefined) {
        let reached = true
        for (const [lane, mark] of req.marks) {
          if (this.#lanes.includes(lane) && !lane.reached(mark)) {
            reached = false
            break
          }
        }
        if (!reached || !this.#cut()) continue
        req.target = this.#nextId - 1
        if (req.drain && this.#wal) req.walTarget = this.#wal.nextSeq
      }
      // flush: every batch up to the target handed to a sender or durable in
      // the WAL (none waiting for an in-flight slot or the commit); drain:
      // every one of them settled, the WAL's backlog included.
      if (!req.drain) this.#spillWaitingUpTo(req.target)
      // (A batch waiting for a slot that the WAL already holds, synced, is durable.)
      const handedOver = (s: { id: number; walSeq?: number }): boolean =>
        s.id > req.target! || (s.walSeq !== undefined && s.walSeq >= 0)
      if (
        req.drain
          ? this.#hasUnsettledUpTo(req.target) ||
            (req.walTarget !== undefined &&
              this.#wal!.settledSeq(this.#lowestUnsettledWalSeq()) < req.walTarget)
          : !this.#waiting.every(handedOver) || !this.#unsynced.every(handedOver)
      )
        continue
      this.#requests.splice(i--, 1)
      this.#post({ __vq: 1, type: 'flushed', id: req.id })
    }
  }

  /**
   * A flush must not wait for the target: batches up to `id` still waiting
   * for an in-flight slot and only in memory (spill mode, or given up by
   * dropOldest) move to the WAL.
   */
  #spillWaitingUpTo(id: number): void {
    if (!this.#wal) return
    for (let i = 0; i < this.#waiting.length; i++) {
      const slab = this.#waiting[i]!
      if (slab.id > id || slab.walSeq >= 0) continue
      if (!this.#toBacklog(slab, slab.id)) return // the flush waits
      this.#waiting.splice(i--, 1)
      this.#unsettled.delete(slab.id)
      this.#slabs.release(slab)
    }
  }

  /**
   * Writes a batch that only the log will keep (cut id `id`) under
   * wal.maxBytes: logged, or dropped and counted (dropNewest). A mark lets a
   * flush wait for its fdatasync. false: it stays in memory (the log is full
   * under block / reject, or cannot be written now).
   */
  #toBacklog(slab: Slab, id: number): boolean {
    let end = -1
    if (this.#walHasRoom(slab.bytes)) {
      end = this.#wal!.spill(slab.view(), slab.count)
      if (end < 0) return false
    } else if (this.#walConfig!.fullPolicy === 'dropNewest') {
      this.#metrics.add(MetricSlot.WAL_DROPPED, slab.count)
    } else return false
    this.#unsynced.push({ id, end })
    return true
  }

  #hasUnsettledUpTo(id: number): boolean {
    for (const unsettled of this.#unsettled.keys()) if (unsettled <= id) return true
    return false
  }

  #updateGauges(): void {
    let items = this.#current?.count ?? 0
    let retrying = 0
    for (const slab of this.#unsettled.values()) {
      items += slab.count
      if (slab.retrying) retrying++
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
      this.#unsettled.size === 0 &&
      !this.#wal?.behind &&
      (this.#current?.count ?? 0) === 0 &&
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
    const slab = this.#current
    // (A batch waiting for room in the WAL is past its linger time: poll instead.)
    let timeout = this.#cutRefused
      ? SPILL_POLL_MS
      : this.#cutter.msUntilLinger(slab?.count ?? 0, slab?.openedAt ?? 0)
    if (this.#stopDeadline !== undefined) timeout = Math.min(timeout, this.#stopDeadline - performance.now())
    if (accumulate) timeout = Math.min(timeout, ACCUMULATE_MS)
    if (this.#wal) {
      timeout = Math.min(
        timeout,
        this.#wal.ackDueInMs(this.#lowestUnsettledWalSeq()),
        this.#wal.syncDueInMs(),
      )
    }
    // Nowhere to drain to: every slab taken, or the open spill batch waits for room in a full WAL.
    const blocked = accumulate || this.#drainBlocked || this.#cutRefused
    // With a WAL, records waiting behind busy slabs may have to spill: look again soon.
    if (blocked && !accumulate && this.#wal && this.#lanes.some((lane) => !lane.isEmpty())) {
      timeout = Math.min(timeout, SPILL_POLL_MS)
    }
    const value = blocked ? ASLEEP_FOR_ACKS : ASLEEP_WAKE_ME
    Atomics.store(this.#control, ControlSlot.DOORBELL, value)
    // Re-check after announcing sleep: a producer that published before it saw
    // the doorbell did not notify (ring/lane-writer.ts publish()).
    if (!blocked && this.#lanes.some((lane) => !lane.isEmpty())) {
      Atomics.store(this.#control, ControlSlot.DOORBELL, 0)
      return yieldToLoop() // (never a pass without timers and messages in between)
    }
    if (timeout <= 0) {
      Atomics.store(this.#control, ControlSlot.DOORBELL, 0)
      return yieldToLoop()
    }
    const res = Atomics.waitAsync(this.#control, ControlSlot.DOORBELL, value, timeout)
    if (res.async) await res.value
    Atomics.store(this.#control, ControlSlot.DOORBELL, 0)
  }

  /**
   * Stopped before the sender was ready: nothing was drained or sent, so
   * there is nothing to deliver or log. Shuts the pool (its threads may be
   * stuck in the sender's factory: they are terminated), closes the log
   * (its lock released) and reports; the host collects what the lanes hold.
   */
  async #abandonStart(): Promise<void> {
    this.#done = true
    await this.#dispatcher.close(0)
    let walPendingItems = 0
    if (this.#wal) {
      walPendingItems = this.#wal.pendingItems
      this.#wal.close()
    }
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
    for (const slab of [...this.#unsettled.values()].sort((a, b) => a.id - b.id)) {
      parts.push(slab.view().slice())
      count += slab.count
      if (slab.walSeq < 0) notLogged.push({ bytes: slab.view(), count: slab.count })
    }
    // Not in the WAL yet: the open batch and whatever is still in the lanes.
    const fresh: Array<{ bytes: Uint8Array; count: number }> = []
    if (this.#current && this.#current.count > 0) {
      fresh.push({ bytes: this.#current.view().slice(), count: this.#current.count })
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
    if (this.#wal) {
      // Everything undelivered is left durable for the next start; the
      // watermark stops at the oldest of it.
      let low = this.#lowestUnsettledWalSeq()
      for (const f of [...notLogged, ...fresh]) {
        const seq = this.#wal.nextSeq
        // (If the log cannot take them, they are still in the StopReport.)
        if (this.#wal.spill(f.bytes, f.count) >= 0) low = Math.min(low ?? seq, seq)
      }
      this.#wal.syncNow()
      this.#wal.settle(low, true)
      walPendingItems = this.#wal.pendingItems
      this.#wal.close()
    }
    this.#deadLetterFile?.close()
    const leftovers = concatBatches(parts)
    this.#post({ __vq: 1, type: 'stopped', leftovers, count, timedOut, walPendingItems }, [
      leftovers.buffer as ArrayBuffer,
    ])
  }
}

import { setImmediate as yieldToLoop } from 'node:timers/promises'
import type { TransferListItem } from 'node:worker_threads'
import { concatBatches } from '../batch/batch-format.ts'
import { MetricSlot } from '../metrics/layout.ts'
import { MetricsWriter } from '../metrics/writer.ts'
import { LaneReader } from '../ring/lane-reader.ts'
import { ControlSlot, recordSize } from '../ring/layout.ts'
import { AdaptiveBatchSize } from './adaptive-batch-size.ts'
import { BatchCutter } from './batch-cutter.ts'
import { Dispatcher } from './dispatcher.ts'
import type { HostToPipeline, PipelineConfig, PipelineToHost, PipelineWorkerData } from './protocol.ts'
import { type Slab, SlabPool, SlabState } from './slab-pool.ts'
import { WalStage } from './wal-stage.ts'

/** DOORBELL values: see ring/layout.ts. 2 = asleep, but producers need not wake us. */
const ASLEEP_WAKE_ME = 1
const ASLEEP_FOR_ACKS = 2

/** How long the pipeline lets a trickle of records accumulate before draining again (ms). */
const ACCUMULATE_MS = 1

interface FlushRequest {
  readonly id: number
  readonly drain: boolean
  /** Lane write positions when the request arrived. */
  readonly marks: Map<LaneReader, number>
  /** Last batch id holding items from before the request, once known. */
  target?: number
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
  readonly #slabs: SlabPool
  readonly #dispatcher: Dispatcher
  readonly #post: (msg: PipelineToHost, transfer?: TransferListItem[]) => void
  readonly #softLimit: number
  /** Batches sent and not settled (in flight or waiting to retry), by id. */
  readonly #unsettled = new Map<number, Slab>()
  readonly #requests: FlushRequest[] = []
  /** Cut batches waiting for an in-flight slot (FIFO; at most one with the slab count used). */
  readonly #waiting: Slab[] = []
  /** WAL-first: cut batches appended to the WAL, waiting for the pass's fsync before they are sent. */
  #unsynced: Slab[] = []
  #wal: WalStage | undefined
  readonly #walConfig: PipelineConfig['wal']
  /** Dispatched and not settled (in flight or waiting to retry). Bounded by maxInFlightBatches. */
  #inFlight = 0
  readonly #maxInFlight: number
  #current: Slab | undefined
  #nextId = 1
  #stopDeadline: number | undefined
  /** The last drain found a lane under pressure (see #drain). */
  #pressed = false
  #backpressure = false
  #done = false

  constructor(data: PipelineWorkerData, post: (msg: PipelineToHost, transfer?: TransferListItem[]) => void) {
    const { config } = data
    this.#post = post
    this.#control = new Int32Array(data.control)
    this.#metrics = new MetricsWriter(data.metrics)
    this.#lanes = data.lanes.map((sab) => new LaneReader(sab))
    this.#cutter = new BatchCutter(config)
    this.#softLimit = config.softLimit
    this.#maxInFlight = config.maxInFlightBatches
    this.#walConfig = config.wal
    if (config.adaptiveBatching) {
      this.#adaptive = new AdaptiveBatchSize(config.adaptiveBatching, config.adaptiveBatching.minBatchSize)
      this.#cutter.maxBatchSize = this.#adaptive.size
    }
    this.#metrics.set(MetricSlot.BATCH_SIZE, this.#cutter.maxBatchSize)
    // One slab per batch in flight plus one being filled (or cut and waiting
    // for an in-flight slot): with none free, the pipeline stops draining.
    const slabBytes = Math.max(config.maxBatchBytes, recordSize(config.maxItemBytes))
    this.#slabs = new SlabPool(
      config.maxInFlightBatches + 1,
      slabBytes,
      (slab) => this.#post({ __vq: 1, type: 'newSlab', uid: slab.uid, slab: slab.sab }),
      (slab) => this.#post({ __vq: 1, type: 'retiredSlab', uid: slab.uid }),
    )
    this.#dispatcher = new Dispatcher(
      config,
      this.#metrics,
      post,
      (slab) => this.#settled(slab),
      (ms) => {
        if (this.#adaptive) {
          this.#cutter.maxBatchSize = this.#adaptive.record(ms)
          this.#metrics.set(MetricSlot.BATCH_SIZE, this.#cutter.maxBatchSize)
        }
      },
      () => this.kick(),
    )
  }

  /** Loads the sender, announces readiness, then runs until stopped. */
  async run(): Promise<void> {
    // Opening the WAL recovers it (a scan of its segments); a failure fails start().
    if (this.#walConfig) this.#wal = new WalStage(this.#walConfig, this.#metrics)
    await this.#dispatcher.ready()
    this.#post({ __vq: 1, type: 'ready', slabs: this.#slabs.all.map((s) => ({ uid: s.uid, sab: s.sab })) })
    while (!this.#done) {
      const cutBefore = this.#nextId
      const recovered = this.#loadRecovered()
      const progressed = this.#drain() || recovered
      this.#lingerCheck()
      this.#serviceRequests()
      this.#commit()
      this.#wal?.settle(this.#lowestUnsettledWalSeq())
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
        const slab = this.#current ?? this.#open()
        if (!slab) return progressed
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
   * Re-delivers batches the WAL held from before the start, oldest first, as
   * slabs become free (they are durable already: no append, no fsync).
   */
  #loadRecovered(): boolean {
    const wal = this.#wal
    let loaded = false
    for (let frame = wal?.peekRecovered(); frame; frame = wal!.peekRecovered()) {
      const slab = this.#slabs.acquire(frame.payload.byteLength)
      if (!slab) break
      wal!.takeRecovered()
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
    if (this.#unsynced.length === 0) return
    this.#wal!.commit()
    this.#waiting.push(...this.#unsynced)
    this.#unsynced = []
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

  #open(): Slab | undefined {
    this.#current = this.#slabs.acquire()
    return this.#current
  }

  #cut(): void {
    const slab = this.#current
    if (!slab || slab.count === 0) return
    this.#current = undefined
    slab.id = this.#nextId++
    slab.setState(SlabState.IN_FLIGHT)
    this.#unsettled.set(slab.id, slab)
    if (this.#wal) {
      slab.walSeq = this.#wal.append(slab.view(), slab.count)
      this.#unsynced.push(slab)
      return
    }
    this.#waiting.push(slab)
    this.#dispatchWaiting()
  }

  #dispatchWaiting(): void {
    while (this.#waiting.length > 0 && this.#inFlight < this.#maxInFlight) {
      this.#inFlight++
      this.#dispatcher.send(this.#waiting.shift()!)
    }
  }

  #lingerCheck(): void {
    const slab = this.#current
    if (!slab || slab.count === 0) return
    if (this.#stopDeadline !== undefined) return this.#cut()
    if (this.#cutter.check(slab.count, slab.openedAt, false) === 'linger') this.#cut()
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
        if (!reached) continue
        this.#cut()
        req.target = this.#nextId - 1
      }
      // flush: every batch up to the target handed to a sender (none still
      // waiting for an in-flight slot); drain: every one of them settled.
      const handedOver = (s: Slab): boolean => s.id > req.target!
      if (
        req.drain
          ? this.#hasUnsettledUpTo(req.target)
          : !this.#waiting.every(handedOver) || !this.#unsynced.every(handedOver)
      )
        continue
      this.#requests.splice(i--, 1)
      this.#post({ __vq: 1, type: 'flushed', id: req.id })
    }
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
    let timeout = this.#cutter.msUntilLinger(slab?.count ?? 0, slab?.openedAt ?? 0)
    if (this.#stopDeadline !== undefined) timeout = Math.min(timeout, this.#stopDeadline - performance.now())
    if (accumulate) timeout = Math.min(timeout, ACCUMULATE_MS)
    if (this.#wal) timeout = Math.min(timeout, this.#wal.ackDueInMs(this.#lowestUnsettledWalSeq()))
    const blocked = accumulate || (!slab && this.#slabs.available === 0)
    const value = blocked ? ASLEEP_FOR_ACKS : ASLEEP_WAKE_ME
    Atomics.store(this.#control, ControlSlot.DOORBELL, value)
    // Re-check after announcing sleep: a producer that published before it saw
    // the doorbell did not notify (ring/lane-writer.ts publish()).
    if (!blocked && this.#lanes.some((lane) => !lane.isEmpty())) {
      Atomics.store(this.#control, ControlSlot.DOORBELL, 0)
      return
    }
    const res = Atomics.waitAsync(this.#control, ControlSlot.DOORBELL, value, Math.max(0, timeout))
    if (res.async) await res.value
    Atomics.store(this.#control, ControlSlot.DOORBELL, 0)
  }

  /** Collects everything not delivered, shuts the pool and reports to the host. */
  async #finishStop(timedOut: boolean): Promise<void> {
    this.#done = true
    await this.#dispatcher.close()
    const parts: Uint8Array[] = []
    let count = 0
    for (const slab of [...this.#unsettled.values()].sort((a, b) => a.id - b.id)) {
      parts.push(slab.view().slice())
      count += slab.count
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
    if (this.#wal) {
      // Everything undelivered is left durable for the next start; the
      // watermark stops at the oldest of it.
      let low = this.#lowestUnsettledWalSeq()
      for (const f of fresh) {
        const seq = this.#wal.append(f.bytes, f.count)
        low = Math.min(low ?? seq, seq)
      }
      this.#wal.commit()
      this.#wal.settle(low, true)
      this.#wal.close()
    }
    const leftovers = concatBatches(parts)
    this.#post({ __vq: 1, type: 'stopped', leftovers, count, timedOut }, [leftovers.buffer as ArrayBuffer])
  }
}

import { MetricSlot } from '../metrics/layout.ts'
import type { MetricsWriter } from '../metrics/writer.ts'
import { type Flight, newFlight } from './flight.ts'
import type { InFlightWindow } from './in-flight-window.ts'
import type { OpenedLog } from './log-open.ts'
import type { PipelineConfig } from './protocol.ts'
import { type Slab, type SlabPool, SlabState } from './slab-pool.ts'
import { WalStage, type WalStageEvent } from './wal-stage.ts'

/** A batch cut for the WAL's backlog: durable once the log's durableSeq reaches `end` (a flush waits for that). */
interface SpillMark {
  readonly id: number
  readonly end: number
}

/** What the backlog tells the pipeline. */
export interface WalBacklogHooks {
  /** An event for the host (damage, conditions, full/room). */
  event(e: WalStageEvent): void
  /** Something the pipeline waits for happened (a background sync finished): look again. */
  kick(): void
  /** The log reached wal.maxBytes (`full`) or has room again. */
  fullChanged(full: boolean): void
}

/**
 * The pipeline's side of the write-ahead log (the log itself, its I/O
 * retries, conditions and acknowledgements are WalStage's): batches logged
 * before they are sent (mode 'first') wait here for the pass's commit; the
 * backlog — batches that only the log keeps, spilled while memory is full or
 * left at stop — is written under wal.maxBytes (fullPolicy) and read back
 * into free slabs, oldest first, when the window has room; the watermark
 * follows the window's lowest unsettled sequence number.
 *
 * WalStage stays a module of its own: it is the log seen as a device that
 * fails (ENOSPC/EIO retries, damage and wrong keys, health conditions,
 * background syncs and acknowledgements), about 570 lines that this
 * module's batch bookkeeping has no need to see.
 */
export class WalBacklog {
  readonly #stage: WalStage
  readonly #config: NonNullable<PipelineConfig['wal']>
  readonly #metrics: MetricsWriter
  readonly #window: InFlightWindow<Flight>
  readonly #hooks: WalBacklogHooks
  /**
   * Cut batches appended to the log, waiting for the pass's commit: flights
   * (WAL-first, sent after it) and spill marks (kept only by the log).
   */
  readonly #unsynced: Array<Flight | SpillMark> = []
  #full = false
  /** `#release` freed slots (see takeFreed). */
  #freed = false

  /** `log`: opened before `ready` (start-up.ts). */
  constructor(
    config: NonNullable<PipelineConfig['wal']>,
    log: OpenedLog,
    metrics: MetricsWriter,
    window: InFlightWindow<Flight>,
    hooks: WalBacklogHooks,
  ) {
    this.#config = config
    this.#metrics = metrics
    this.#window = window
    this.#hooks = hooks
    this.#stage = new WalStage(config, log, metrics, hooks.event, hooks.kick)
  }

  /** The log holds batches not read back yet (recovery, or spilled ones). */
  get behind(): boolean {
    return this.#stage.behind
  }

  /** Sequence number the next appended item gets. */
  get nextSeq(): number {
    return this.#stage.nextSeq
  }

  /** The log's id: `batch.key` of a batch the log holds is `<logId>:<first sequence number>`. */
  get logId(): string {
    return this.#stage.logId
  }

  /** The log is at wal.maxBytes. */
  get full(): boolean {
    return this.#full
  }

  /** The log is full and wal.fullPolicy (block, reject) keeps batches in memory rather than drop any. */
  get refusesSpill(): boolean {
    const policy = this.#config.fullPolicy
    return this.#full && (policy === 'block' || policy === 'reject')
  }

  /** Batches are logged before they are sent (mode 'first'). */
  get logsFirst(): boolean {
    return this.#config.mode === 'first'
  }

  /**
   * Reads the backlog back into free slabs and queues it in the window,
   * oldest first: first what the log held at start (recovery), then what
   * was spilled. `nextId` gives each batch its cut id. Returns whether any
   * was read.
   */
  load(slabs: SlabPool, nextId: () => number): boolean {
    const stage = this.#stage
    if (!stage.behind) return false
    // Batches logged first and durable by now go before the backlog frames
    // logged after them (the same sync may have covered both): the window
    // sends in sequence order, which the slots held for acknowledgements
    // rely on (in-flight-window.ts).
    let loaded = this.#enqueueDurable()
    while (slabs.available > 0 && this.#window.hasRoom) {
      const frame = stage.nextFrame()
      if (!frame) break
      const slab = slabs.acquire(frame.payload.byteLength)!
      slab.data.set(frame.payload)
      slab.count = frame.count
      slab.bytes = frame.payload.byteLength
      const flight = newFlight(nextId(), slab, frame.firstSeq, this.#stage.logId)
      slab.setState(SlabState.IN_FLIGHT, flight.id)
      this.#window.add(flight)
      this.#window.enqueue(flight)
      loaded = true
    }
    if (loaded) this.#window.dispatch()
    return loaded
  }

  /**
   * WAL-first: appends a batch about to be sent; its sequence number, or
   * undefined when the log cannot be written now (ENOSPC, EIO: the batch
   * stays in memory). The flight waits for the commit (`awaitCommit`).
   */
  appendSent(slab: Slab): number | undefined {
    const seq = this.#stage.appendSent(slab.view(), slab.count)
    return seq < 0 ? undefined : seq
  }

  /** A flight just appended: it goes to the window's queue once the log has made it durable. */
  awaitCommit(flight: Flight): void {
    this.#unsynced.push(flight)
  }

  /**
   * One fsync for every batch cut this pass (with an acknowledgement record
   * of what settled); those now durable go to the window's queue (in order),
   * and settled batches whose acknowledgement is now written give up their
   * slot.
   */
  commit(): void {
    this.#stage.commit(this.#window.lowestWalSeq())
    this.#release()
    if (this.#enqueueDurable()) this.#window.dispatch()
  }

  /**
   * Queues the cut batches that are durable now, in order (the rest wait for
   * the next fdatasync). Returns whether any was queued.
   */
  #enqueueDurable(): boolean {
    if (this.#unsynced.length === 0) return false
    const durable = this.#stage.durableSeq
    let n = 0
    for (const cut of this.#unsynced) {
      const end = 'slab' in cut ? cut.walSeq! + cut.slab.count : cut.end
      if (end > durable) break
      if ('slab' in cut) this.#window.enqueue(cut)
      n++
    }
    this.#unsynced.splice(0, n)
    return n > 0
  }

  /**
   * Whether the log can take `bytes` more under wal.maxBytes (dropOldest
   * first drops what it may); tracks the full state (metric, hook).
   */
  hasRoom(bytes: number): boolean {
    const stage = this.#stage
    if (this.#config.fullPolicy === 'dropOldest')
      while (stage.wouldOverflow(bytes) && this.#dropOldestSegment()) {}
    const full = stage.wouldOverflow(bytes)
    if (full !== this.#full) {
      this.#full = full
      this.#metrics.set(MetricSlot.WAL_FULL, full ? 1 : 0)
      this.#hooks.fullChanged(full)
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
    const drop = this.#stage.dropOldestSegment()
    if (!drop) return false
    for (const flight of this.#window.unsettled())
      if (flight.walSeq !== undefined && flight.walSeq < drop.end) flight.walSeq = undefined
    this.#stage.settle(this.#window.lowestWalSeq(), true)
    return true
  }

  /**
   * Writes a batch that only the log will keep (cut id `id`) under
   * wal.maxBytes: logged, or dropped and counted (dropNewest). A mark lets a
   * flush wait for its fdatasync. false: it stays in memory (the log is full
   * under block / reject, or cannot be written now).
   */
  toBacklog(slab: Slab, id: number): boolean {
    let end = -1
    if (this.hasRoom(slab.bytes)) {
      end = this.#stage.spill(slab.view(), slab.count)
      if (end < 0) return false
    } else if (this.#config.fullPolicy === 'dropNewest') {
      this.#metrics.add(MetricSlot.WAL_DROPPED, slab.count)
    } else return false
    this.#unsynced.push({ id, end })
    return true
  }

  /**
   * A flush must not wait for the target: batches up to `id` still waiting
   * for an in-flight slot and only in memory (spill mode, or given up by
   * dropOldest) move to the backlog; `release` frees each one's slab.
   */
  spillWaitingUpTo(id: number, release: (slab: Slab) => void): void {
    this.#window.takeWaiting(
      (flight) => flight.id <= id && flight.walSeq === undefined,
      (flight) => {
        if (!this.toBacklog(flight.slab, flight.id)) return false // the flush waits
        release(flight.slab)
        return true
      },
    )
  }

  /** Whether every batch waiting for the commit passes `test`. */
  everyUnsynced(test: (cut: { id: number; walSeq?: number | undefined }) => boolean): boolean {
    return this.#unsynced.every(test)
  }

  /** Whether everything logged before sequence number `walTarget` is settled (a drain's WAL condition). */
  settledUpTo(walTarget: number): boolean {
    return this.#stage.settledSeq(this.#window.lowestWalSeq()) >= walTarget
  }

  /** Acknowledges up to the oldest unsettled batch (see WalStage.settle); frees the slots that waited for it. */
  settle(): void {
    this.#stage.settle(this.#window.lowestWalSeq())
    this.#release()
  }

  /** Frees the slots of settled batches below the written acknowledgement and fills them. */
  #release(): void {
    if (this.#window.held > 0 && this.#window.release(this.#stage.releasedSeq) > 0) {
      this.#freed = true
      this.#window.dispatch()
    }
  }

  /** Whether slots were freed since the last call (the pipeline then reads more of the backlog into them). */
  takeFreed(): boolean {
    const freed = this.#freed
    this.#freed = false
    return freed
  }

  /** How long the pipeline may sleep before the log needs it (an acknowledgement or a periodic sync due). */
  dueInMs(): number {
    return Math.min(this.#stage.ackDueInMs(this.#window.lowestWalSeq()), this.#stage.syncDueInMs())
  }

  /** Closes the log without writing anything (a start abandoned); returns the items it holds. */
  abandon(): number {
    const pending = this.#stage.pendingItems
    this.#stage.close()
    return pending
  }

  /**
   * At stop: leaves everything undelivered durable for the next start — the
   * batches in memory that the log does not hold (`notLogged`, `fresh`) are
   * appended (if the log cannot take them, they are still in the stop
   * report) — and the watermark at the oldest of it; closes the log and
   * returns the items it holds.
   */
  finish(parts: ReadonlyArray<{ bytes: Uint8Array; count: number }>): number {
    const stage = this.#stage
    let low = this.#window.lowestWalSeq()
    for (const f of parts) {
      const seq = stage.nextSeq
      if (stage.spill(f.bytes, f.count) >= 0) low = Math.min(low ?? seq, seq)
    }
    stage.syncNow()
    stage.settle(low, true)
    const pending = stage.pendingItems
    stage.close()
    return pending
  }
}

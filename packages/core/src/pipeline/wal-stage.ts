import {
  FrameFlag,
  type WalDamage,
  WalError,
  WalErrorCodes,
  type WalFrame,
  type WalReader,
  type WriteAheadLog,
} from '@vinequeue/wal'
import { MetricSlot } from '../metrics/layout.ts'
import type { MetricsWriter } from '../metrics/writer.ts'
import { damageError, damageReason, type OpenedLog, walGauges } from './log-open.ts'
import { type ErrorInfo, errorInfo, type PipelineConfig } from './protocol.ts'

/**
 * The `ack` file (a small write + fdatasync in the background) is brought up
 * to date at most this often (ms) while acknowledgement records carry the
 * acknowledgements: it is what lets delivered segments be deleted. Sooner
 * when slots wait for an acknowledgement that no record can carry.
 */
const ACK_INTERVAL_MS = 100

/** After a failed write or fsync (ENOSPC, EIO), the log is tried again this much later (ms). */
const RETRY_IO_MS = 100

/**
 * health() stops reporting a log that could not be written once writes have
 * succeeded for this long (ms): on a full disk a small frame can fit where a
 * large one did not, and the state would flap with every batch.
 */
const IO_HEALTHY_AFTER_MS = 1000

/**
 * Frames read ahead, after a frame fails authentication, to tell a wrong key
 * (none of its key id authenticates) from a damaged frame (others do).
 */
const KEY_PROBE_FRAMES = 32

/**
 * A condition of the log that health() reports while it lasts: `stalled`
 * (re-delivery stopped: a key missing or probably wrong; down), `io` (the
 * log cannot be written: ENOSPC, EIO; degraded), `ack` (the watermark
 * cannot be written; degraded), `damage` (damage found since start;
 * degraded). `status` undefined: it is over.
 */
export type WalCondition = 'stalled' | 'io' | 'ack' | 'damage'

export type WalStageEvent =
  | { readonly event: 'recovered'; readonly items: number; readonly ms: number }
  | { readonly event: 'error'; readonly error: ErrorInfo }
  | {
      readonly event: 'condition'
      readonly condition: WalCondition
      readonly status?: 'degraded' | 'down'
      readonly reason?: string
    }

/**
 * The pipeline thread's use of the write-ahead log. The pipeline thread is
 * the log's one owner: it already sees every batch in order, and a WAL
 * thread of its own would add a hop per batch and a third busy thread on
 * this 2-core machine.
 *
 * Two ways in: `appendSent` for a batch that stays in memory and is sent
 * from there (WAL-first), and `spill` for one that only the log keeps (the
 * backlog: memory was full, or older items are still waiting in the log).
 * One way out: `nextFrame` reads the backlog back, oldest first, starting
 * with what the log held at start (recovery). A reader position marks what
 * was read back; the delivered watermark follows the oldest batch not
 * settled, never passing the reader. The batches themselves (what waits for
 * the commit, the full policy, reading back into slabs) are wal-backlog.ts's.
 *
 * Its length (~570 lines) and private fields (~30) are the log seen as a
 * device that fails: each failure mode keeps its own small state machine
 * (a write/fsync error streak and its retry time, damage and the quarantine
 * retry, a key that does not authenticate, a failing acknowledgement, a
 * sync or acknowledgement in progress), and health() reports them as one
 * set of conditions, so they stay together.
 */
export class WalStage {
  readonly #wal: WriteAheadLog
  readonly #reader: WalReader
  readonly #syncMode: 'always' | 'periodic' | 'none'
  readonly #syncIntervalMs: number
  readonly #maxBytes: number
  readonly #metrics: MetricsWriter
  readonly #onEvent: (e: WalStageEvent) => void
  readonly #dir: string
  /** Items below this were in the log when it was opened. */
  readonly #startSeq: number
  readonly #openedAt: number
  #recovering: boolean
  #lastAckAt = 0
  #lastSyncAt = performance.now()
  #dirty = false
  /**
   * A frame whose key is missing, or probably wrong: reading stops here
   * (nothing is skipped, the watermark never passes it) until a restart
   * with the key.
   */
  #stalled = false
  #skippedCorrupt = 0
  /** Key ids with a frame from before the start that authenticated in this process. */
  readonly #keysThatWork = new Set<number>()
  /** Copying a damaged frame to quarantine failed: reading waits until then (performance.now()). */
  #quarantineRetryAt = 0
  /** Damage was found: health() says so until the queue stops. */
  #damageReported = false
  /** The last damage reason sent (sent again only when it changes). */
  #damageReason = ''
  /** The watermark could not be written (reported once per failing streak). */
  #ackFailing = false
  /** A write or fsync failed: no new attempt before this time (performance.now()). */
  #ioRetryAt = 0
  #ioFailing = false
  /** health() shows that the log cannot be written (cleared IO_HEALTHY_AFTER_MS after the last failure). */
  #ioReported = false
  #ioFailedAt = 0
  /** A background fdatasync is running (commit). */
  #syncing = false
  /** A watermark write (ackAsync) is running. */
  #acking = false
  /** A watermark write failed: the next one not before this time (performance.now()). */
  #ackRetryAt = 0
  readonly #onSynced: () => void

  /** `log`: opened before `ready` (start-up.ts); damage found from now on is reported here. */
  constructor(
    config: NonNullable<PipelineConfig['wal']>,
    log: OpenedLog,
    metrics: MetricsWriter,
    onEvent: (e: WalStageEvent) => void,
    onSynced: () => void,
  ) {
    this.#onSynced = onSynced
    this.#syncMode = config.syncMode
    this.#syncIntervalMs = config.syncIntervalMs
    this.#maxBytes = config.maxBytes
    this.#metrics = metrics
    this.#onEvent = onEvent
    this.#dir = config.dir
    this.#wal = log.wal
    // (Damage found while opening was reported then, as it was found.)
    this.#damageReported = log.damaged
    log.onDamage = (d) => this.#damaged(d)
    this.#reader = log.reader
    this.#openedAt = log.openedAt
    this.#startSeq = this.#wal.nextSeq
    // (`recovering`, the gauges and the damage condition were set when the log was opened: log-open.ts.)
    this.#recovering = this.#reader.behind
  }

  /** Sequence number the next appended item gets. */
  get nextSeq(): number {
    return this.#wal.nextSeq
  }

  /** The log's id (WriteAheadLog.logId): the scope of the keys of batches it holds. */
  get logId(): string {
    return this.#wal.logId
  }

  /** Items in the log not acknowledged yet. */
  get pendingItems(): number {
    return this.#wal.pendingItems
  }

  /** Everything below this is delivered or dead-lettered (what the watermark may move to). */
  settledSeq(lowestUnsettled: number | undefined): number {
    return this.#ackable(lowestUnsettled)
  }

  /** Frames written and not read back yet (the backlog, recovery included). */
  get behind(): boolean {
    return this.#reader.behind
  }

  /** Whether `bytes` more would take the log past `maxBytes`. */
  wouldOverflow(bytes: number): boolean {
    return this.#wal.sizeBytes + bytes + 64 > this.#maxBytes
  }

  /**
   * WAL-first: appends a batch that stays in memory and is sent from there
   * (only when nothing is behind: the reader then skips it). Returns its
   * first sequence number, or -1 when the log cannot be written now (ENOSPC,
   * EIO: reported once, tried again later). Durable after `commit`.
   */
  appendSent(bytes: Uint8Array, count: number): number {
    const seq = this.#io(() => this.#wal.append(bytes, count))
    if (seq === undefined) return -1
    this.#dirty = true
    this.#reader.catchUp()
    return seq
  }

  /**
   * Appends a batch only the log keeps (`nextFrame` reads it back later).
   * Returns the sequence number after it (durable once `durableSeq` reaches
   * it), or -1 when the log cannot be written now.
   */
  spill(bytes: Uint8Array, count: number): number {
    const seq = this.#io(() => this.#wal.append(bytes, count))
    if (seq === undefined) return -1
    this.#dirty = true
    this.#metrics.add(MetricSlot.SPILLED, count)
    return seq + count
  }

  /**
   * Runs a write; a WalError IO (ENOSPC, EIO: the log is as it was) becomes
   * undefined, reported once per failing streak, with no new attempt for
   * RETRY_IO_MS. The queue keeps running: what could not be written stays in
   * memory and is written when the file system lets it.
   */
  #io<T>(write: () => T): T | undefined {
    if (this.#ioFailing && performance.now() < this.#ioRetryAt) return undefined
    try {
      const result = write()
      this.#ioOk()
      return result
    } catch (err) {
      if (!(err instanceof WalError) || err.code !== WalErrorCodes.IO) throw err
      this.#ioFailed(err)
      return undefined
    }
  }

  /**
   * A write or fsync failed: tried again RETRY_IO_MS later. Reported once per
   * episode (an 'error' event and a health() reason), which ends once writes
   * have succeeded for IO_HEALTHY_AFTER_MS.
   */
  #ioFailed(err: WalError): void {
    const now = performance.now()
    this.#ioFailedAt = now
    this.#ioFailing = true
    this.#ioRetryAt = now + RETRY_IO_MS
    if (this.#ioReported) return
    this.#ioReported = true
    this.#onEvent({ event: 'error', error: errorInfo(err) })
    this.#onEvent({
      event: 'condition',
      condition: 'io',
      status: 'degraded',
      reason: `write-ahead log cannot be written (${err.message}): batches wait in memory, retried every ${RETRY_IO_MS} ms`,
    })
  }

  #ioOk(): void {
    if (!this.#ioFailing) return
    this.#ioFailing = false
    this.#clearIoLater()
  }

  /** Clears the health condition once writes have gone on succeeding for IO_HEALTHY_AFTER_MS. */
  #clearIoLater(): void {
    setTimeout(() => {
      if (!this.#ioReported || this.#ioFailing) return
      if (performance.now() - this.#ioFailedAt < IO_HEALTHY_AFTER_MS) return this.#clearIoLater()
      this.#ioReported = false
      this.#onEvent({ event: 'condition', condition: 'io' })
    }, IO_HEALTHY_AFTER_MS).unref()
  }

  /** A write or fsync failed and is not due for another try yet. */
  get ioBlocked(): boolean {
    return this.#ioFailing && performance.now() < this.#ioRetryAt
  }

  /**
   * The next backlog frame to send (durable first under syncMode 'always'),
   * or undefined. A frame whose key was not supplied, or which fails
   * authentication while no frame of its key id from before the start has
   * authenticated (the key is probably wrong), stops the reading — nothing
   * is skipped, the watermark never passes it — with an 'error' event and
   * health() down until a restart with the right key. A frame that fails
   * among good ones of its key is damage: copied to quarantine, skipped,
   * counted and reported.
   */
  nextFrame(): WalFrame | undefined {
    if (this.#stalled || performance.now() < this.#quarantineRetryAt) return undefined
    const limit = this.durableSeq
    for (;;) {
      try {
        const frame = this.#reader.next(limit)
        if (frame) {
          if (frame.firstSeq < this.#startSeq) {
            this.#metrics.add(MetricSlot.RECOVERED, frame.count)
            if (frame.flags & FrameFlag.ENCRYPTED) this.#keysThatWork.add(frame.keyId)
          }
        }
        this.#checkRecovered()
        return frame
      } catch (err) {
        if (err instanceof WalError && err.code === WalErrorCodes.DECRYPT) {
          const header = this.#reader.peekHeader(limit)!
          // Written by this process (with the key it has) or among good frames of its key: damage.
          const damaged =
            header.firstSeq >= this.#startSeq ||
            this.#keysThatWork.has(header.keyId) ||
            this.#keyAuthenticatesAhead(header.keyId, header.firstSeq + header.count, limit)
          if (!damaged) {
            this.#stall(
              err,
              `write-ahead log re-delivery stopped at sequence ${header.firstSeq}: its frames of key id ${header.keyId} fail authentication and none of that key has: the key is probably wrong. Nothing is skipped or deleted; restart with the right key`,
            )
            return undefined
          }
          try {
            this.#reader.quarantine(limit)
          } catch (copyErr) {
            if (!(copyErr instanceof WalError) || copyErr.code !== WalErrorCodes.IO) throw copyErr
            // Not skipped without its copy: reading waits, the copy is tried again.
            this.#ioFailed(copyErr)
            this.#quarantineRetryAt = performance.now() + RETRY_IO_MS
            return undefined
          }
          this.#skippedCorrupt++
          this.#gauges()
          continue
        }
        if (err instanceof WalError && err.code === WalErrorCodes.KEY_MISSING) {
          this.#stall(
            err,
            `write-ahead log re-delivery stopped: ${err.message}. Nothing is skipped or deleted; restart with that key`,
          )
          return undefined
        }
        throw err
      }
    }
  }

  /** Stops reading the backlog (until a restart): an error event, health() down. */
  #stall(err: WalError, reason: string): void {
    this.#stalled = true
    this.#metrics.set(MetricSlot.WAL_STALLED, 1)
    this.#onEvent({ event: 'error', error: { ...errorInfo(err), message: `${err.message}. ${reason}` } })
    this.#onEvent({ event: 'condition', condition: 'stalled', status: 'down', reason })
  }

  /**
   * Whether a frame of `keyId` written before the start authenticates among
   * the next KEY_PROBE_FRAMES frames from `fromSeq` (a reader of its own:
   * the main reader does not move). Frames this process wrote do not count:
   * they were encrypted with the key it has, right or wrong.
   */
  #keyAuthenticatesAhead(keyId: number, fromSeq: number, limit: number): boolean {
    const probe = this.#wal.reader(fromSeq)
    try {
      for (let n = 0; n < KEY_PROBE_FRAMES; n++) {
        const header = probe.peekHeader(limit)
        if (!header || header.firstSeq >= this.#startSeq) return false
        if (header.keyId !== keyId || !(header.flags & FrameFlag.ENCRYPTED)) {
          probe.skip(limit)
          continue
        }
        try {
          probe.next(limit)
          this.#keysThatWork.add(keyId)
          return true
        } catch (err) {
          if (!(err instanceof WalError) || err.code !== WalErrorCodes.DECRYPT) throw err
          probe.skip(limit)
        }
      }
      return false
    } finally {
      probe.close()
    }
  }

  /** Damage the log found while reading: an error event, counted, health() degraded. */
  #damaged(d: WalDamage): void {
    this.#onEvent({ event: 'error', error: damageError(d) })
    this.#damageReported = true
    this.#gauges()
  }

  #damageCondition(): void {
    const reason = damageReason(this.#wal, this.#skippedCorrupt, this.#dir)
    if (reason === this.#damageReason) return
    this.#damageReason = reason
    this.#onEvent({ event: 'condition', condition: 'damage', status: 'degraded', reason })
  }

  #checkRecovered(): void {
    if (!this.#recovering || this.#reader.position < this.#startSeq) return
    this.#recovering = false
    this.#metrics.set(MetricSlot.RECOVERING, 0)
    this.#onEvent({
      event: 'recovered',
      items: Number(this.#metrics.get(MetricSlot.RECOVERED)),
      ms: performance.now() - this.#openedAt,
    })
  }

  /**
   * wal.fullPolicy 'dropOldest': gives up the oldest segment. Returns where
   * it ends (every sequence number below is no longer kept: the caller stops
   * holding the watermark for batches there) and the unread items dropped;
   * undefined when there is nothing to drop.
   */
  dropOldestSegment(): { end: number; dropped: number } | undefined {
    // Re-delivery stopped for a key: the oldest segment holds what a restart
    // with the right key would deliver. Not dropped (the log acts as 'block').
    if (this.#stalled) return undefined
    let end = this.#wal.oldestSegmentEnd
    if (end === undefined || end <= this.#wal.ackFileSeq) return undefined
    if (end === this.#wal.nextSeq) {
      // Everything is in the segment being written: close it (synced) so it can go.
      this.#wal.seal()
      end = this.#wal.nextSeq
    }
    const dropped = this.#reader.skipTo(end)
    this.#metrics.add(MetricSlot.WAL_DROPPED, dropped)
    this.#checkRecovered()
    return { end, dropped }
  }

  /**
   * Writes an acknowledgement record for everything settled, when that moved
   * and a segment is open for appending. It asks for no sync of its own: the
   * next group commit of appended batches covers it, or, when nothing is
   * being appended, the `ack` file written every ACK_INTERVAL_MS — so the
   * fdatasyncs stay one per group commit of batches.
   */
  #recordAck(lowestUnsettled: number | undefined): void {
    const seq = this.#ackable(lowestUnsettled)
    if (seq <= this.releasedSeq || !this.#wal.appending) return
    this.#io(() => this.#wal.recordAck(seq))
  }

  /**
   * Settled batches the log holds give up their in-flight slot once the
   * acknowledgement covering them is below this: written to the log's files
   * (a record in the segment, or the `ack` file), which a process crash
   * keeps. Its fdatasync follows with the next group commit (or the `ack`
   * file's): waiting for that too would hold every slot one fdatasync
   * longer, which cost 60% of the re-delivery rate of a backlog and about
   * 20% of the encrypted WAL's throughput here, for a bound that only a
   * power cut needs (see the core README, "Duplicates after a crash").
   */
  get releasedSeq(): number {
    return this.#wal.recordedAckSeq
  }

  /**
   * Makes appended frames durable, off this thread: syncMode 'always' starts
   * a background fdatasync covering everything appended so far (group
   * commit: what is appended while it runs waits for the next one);
   * 'periodic' does so once the interval has passed; 'none' never. A failed
   * fdatasync is reported (an 'error' event per failing streak) and tried
   * again RETRY_IO_MS later; what it was to cover is not durable meanwhile.
   * Under 'always' an acknowledgement record of everything settled before
   * `lowestUnsettled` goes with it (group commit: no fdatasync of its own),
   * as do the records `settle` wrote since the last one.
   */
  commit(lowestUnsettled: number | undefined): void {
    if (!this.#dirty || this.#syncing || this.ioBlocked) return
    // (syncMode 'always': the record rides on the fdatasync started here.)
    if (this.#syncMode === 'always') this.#recordAck(lowestUnsettled)
    if (this.#syncMode === 'none') {
      this.#dirty = false
      this.#gauges()
      return
    }
    const started = performance.now()
    if (this.#syncMode === 'periodic' && started - this.#lastSyncAt < this.#syncIntervalMs) return
    this.#dirty = false
    this.#syncing = true
    this.#wal.syncAsync().then(
      () => {
        this.#syncing = false
        this.#ioOk()
        this.#lastSyncAt = performance.now()
        this.#metrics.recordFsync(this.#lastSyncAt - started)
        this.#gauges()
        this.#onSynced()
      },
      (err: unknown) => {
        this.#syncing = false
        this.#dirty = true
        if (err instanceof WalError && err.code === WalErrorCodes.CLOSED) return // closed meanwhile
        this.#ioFailed(err as WalError)
        this.#onSynced()
      },
    )
  }

  /**
   * Every item below this is as durable as syncMode makes it: fdatasync'ed
   * under 'always', written under 'periodic' and 'none'.
   */
  get durableSeq(): number {
    return this.#syncMode === 'always' ? this.#wal.syncedSeq : this.#wal.nextSeq
  }

  /** A synchronous fdatasync of everything appended (at stop). false: it failed (reported). */
  syncNow(): boolean {
    if (this.#syncMode === 'none') return true
    this.#ioRetryAt = 0 // (now, whatever failed before)
    const ok = this.#io(() => this.#wal.sync()) !== undefined
    if (ok) this.#dirty = false
    return ok
  }

  /** Milliseconds until commit() owes another fdatasync attempt (Infinity when none is owed). */
  syncDueInMs(): number {
    if (!this.#dirty || this.#syncing || this.#syncMode === 'none') return Number.POSITIVE_INFINITY
    const now = performance.now()
    if (this.ioBlocked) return Math.max(0, this.#ioRetryAt - now)
    if (this.#syncMode === 'periodic') return Math.max(0, this.#lastSyncAt + this.#syncIntervalMs - now)
    return 0
  }

  /**
   * Every item below `lowestUnsettled` (or below the reader, when nothing
   * read is unsettled) was delivered or dead-lettered: writes an
   * acknowledgement record now (the next group commit syncs it), and moves
   * the `ack` file's watermark (which lets delivered segments go) at most
   * every ACK_INTERVAL_MS — unless `force`, or the file must carry it now
   * (#needsAckFile: no record can).
   */
  settle(lowestUnsettled: number | undefined, force = false): void {
    const now = performance.now()
    const seq = this.#ackable(lowestUnsettled)
    if (!force && !this.ioBlocked) this.#recordAck(lowestUnsettled)
    const urgent = this.#needsAckFile(seq) && now >= this.#ackRetryAt
    if (!force && !urgent && now - this.#lastAckAt < ACK_INTERVAL_MS) return
    if (force && seq > this.#wal.ackFileSeq) {
      // (At stop and when dropping a segment: now, on this thread.)
      this.#lastAckAt = now
      const acked = this.#io(() => {
        this.#wal.ack(seq)
        return true
      })
      if (acked) this.#gauges()
      return
    }
    if (this.#acking) return
    if (seq > this.#wal.ackFileSeq) {
      this.#lastAckAt = now
      // The watermark's fdatasync runs in the background: a synchronous one
      // waits behind a segment's sync in progress (note `wal.ack_sync_stall`
      // in packages/bench/README.md). A failed
      // write only delays the deletion of delivered segments.
      this.#acking = true
      this.#wal.ackAsync(seq).then(
        () => {
          this.#acking = false
          if (this.#ackFailing) {
            this.#ackFailing = false
            this.#onEvent({ event: 'condition', condition: 'ack' })
          }
          this.#gauges()
          this.#onSynced() // (slots waiting for it may be released)
        },
        (err: unknown) => {
          this.#acking = false
          if (err instanceof WalError && err.code === WalErrorCodes.CLOSED) return // closed meanwhile
          if (!(err instanceof WalError) || err.code !== WalErrorCodes.IO) throw err
          this.#ackRetryAt = performance.now() + RETRY_IO_MS
          this.#onSynced()
          if (this.#ackFailing) return
          this.#ackFailing = true
          this.#onEvent({ event: 'error', error: errorInfo(err) })
          this.#onEvent({
            event: 'condition',
            condition: 'ack',
            status: 'degraded',
            reason: `write-ahead log watermark cannot be written (${err.message}): delivered segments are not deleted until it can`,
          })
        },
      )
    }
  }

  #ackable(lowestUnsettled: number | undefined): number {
    return Math.min(lowestUnsettled ?? Number.POSITIVE_INFINITY, this.#reader.position)
  }

  /**
   * Whether the `ack` file must carry the acknowledgement `seq` now rather
   * than at the next ACK_INTERVAL_MS: settled batches wait for it (their
   * slots are held) and no record can carry it — no segment is open for
   * one, or the log cannot be written now.
   */
  #needsAckFile(seq: number): boolean {
    return seq > this.releasedSeq && (!this.#wal.appending || this.ioBlocked)
  }

  /**
   * Milliseconds until `commit` or `settle` would write an acknowledgement
   * (Infinity when there is none to write, or when the sync or watermark
   * write under way will wake the pipeline): it must not sleep past one it
   * owes — least of all one that settled batches wait for.
   */
  ackDueInMs(lowestUnsettled: number | undefined): number {
    const seq = this.#ackable(lowestUnsettled)
    const now = performance.now()
    if (this.#needsAckFile(seq))
      return this.#acking ? Number.POSITIVE_INFINITY : Math.max(0, this.#ackRetryAt - now)
    // A record, written by the next pass.
    if (seq > this.releasedSeq) return 0
    if (seq <= this.#wal.ackFileSeq) return Number.POSITIVE_INFINITY
    return Math.max(0, this.#lastAckAt + ACK_INTERVAL_MS - now)
  }

  #gauges(): void {
    walGauges(this.#metrics, this.#wal, this.#skippedCorrupt)
    if (this.#damageReported) this.#damageCondition()
  }

  /** Syncs and closes the log (what is in it is re-delivered at the next start). */
  close(): void {
    this.#reader.close()
    this.#ioRetryAt = 0
    this.#io(() => this.#wal.close())
  }
}

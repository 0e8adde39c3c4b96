import {
  WalError,
  WalErrorCodes,
  type WalFrame,
  type WalFs,
  type WalReader,
  WriteAheadLog,
} from '@vinequeue/wal'
import { MetricSlot } from '../metrics/layout.ts'
import type { MetricsWriter } from '../metrics/writer.ts'
import type { ErrorInfo, PipelineConfig } from './protocol.ts'

/** Acknowledgements (a small fsync'ed file write) at most this often (ms). */
const ACK_INTERVAL_MS = 100

/** After a failed write or fsync (ENOSPC, EIO), the log is tried again this much later (ms). */
const RETRY_IO_MS = 100

export type WalStageEvent =
  | { readonly event: 'recovered'; readonly items: number; readonly ms: number }
  | { readonly event: 'error'; readonly error: ErrorInfo }

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
 * settled, never passing the reader.
 */
export class WalStage {
  readonly #wal: WriteAheadLog
  readonly #reader: WalReader
  readonly #syncMode: 'always' | 'periodic' | 'none'
  readonly #syncIntervalMs: number
  readonly #maxBytes: number
  readonly #metrics: MetricsWriter
  readonly #onEvent: (e: WalStageEvent) => void
  /** Items below this were in the log when it was opened. */
  readonly #startSeq: number
  readonly #openedAt = performance.now()
  #recovering: boolean
  #lastAckAt = 0
  #lastSyncAt = performance.now()
  #dirty = false
  /** A frame whose key is missing: reading stops here (nothing is skipped) until a restart with the key. */
  #stalled = false
  #skippedCorrupt = 0
  /** A write or fsync failed: no new attempt before this time (performance.now()). */
  #ioRetryAt = 0
  #ioFailing = false
  /** A background fdatasync is running (commit). */
  #syncing = false
  /** A watermark write (ackAsync) is running. */
  #acking = false
  readonly #onSynced: () => void

  constructor(
    config: NonNullable<PipelineConfig['wal']>,
    metrics: MetricsWriter,
    onEvent: (e: WalStageEvent) => void,
    onSynced: () => void,
    fs?: WalFs,
  ) {
    this.#onSynced = onSynced
    this.#wal = WriteAheadLog.open(config.dir, {
      segmentBytes: config.segmentBytes,
      compression: config.compression,
      encryption: config.encryption,
      // Unlinking a 64 MiB segment stalled this thread ~29 ms (ext4): p99 latency.
      deleteInBackground: true,
      ...(fs ? { fs } : {}),
    })
    this.#syncMode = config.syncMode
    this.#syncIntervalMs = config.syncIntervalMs
    this.#maxBytes = config.maxBytes
    this.#metrics = metrics
    this.#onEvent = onEvent
    this.#reader = this.#wal.reader()
    this.#startSeq = this.#wal.nextSeq
    this.#recovering = this.#reader.behind
    metrics.set(MetricSlot.RECOVERING, this.#recovering ? 1 : 0)
    this.#gauges()
  }

  /** Sequence number the next appended item gets. */
  get nextSeq(): number {
    return this.#wal.nextSeq
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
      this.#ioFailing = false
      return result
    } catch (err) {
      if (!(err instanceof WalError) || err.code !== WalErrorCodes.IO) throw err
      if (!this.#ioFailing) this.#onEvent({ event: 'error', error: info(err) })
      this.#ioFailing = true
      this.#ioRetryAt = performance.now() + RETRY_IO_MS
      return undefined
    }
  }

  /** A write or fsync failed and is not due for another try yet. */
  get ioBlocked(): boolean {
    return this.#ioFailing && performance.now() < this.#ioRetryAt
  }

  /**
   * The next backlog frame to send (durable first under syncMode 'always'),
   * or undefined. A frame that fails decryption with the key it names is
   * tampered or damaged: skipped and counted. A frame whose key was not
   * supplied stops the reading (an 'error' event says why) rather than
   * losing it.
   */
  nextFrame(): WalFrame | undefined {
    if (this.#stalled) return undefined
    const limit = this.durableSeq
    for (;;) {
      try {
        const frame = this.#reader.next(limit)
        if (frame && frame.firstSeq < this.#startSeq) this.#metrics.add(MetricSlot.RECOVERED, frame.count)
        this.#checkRecovered()
        return frame
      } catch (err) {
        if (err instanceof WalError && err.code === WalErrorCodes.DECRYPT) {
          this.#reader.skip(limit)
          this.#skippedCorrupt++
          this.#gauges()
          this.#onEvent({ event: 'error', error: info(err) })
          continue
        }
        if (err instanceof WalError && err.code === WalErrorCodes.KEY_MISSING) {
          this.#stalled = true
          this.#onEvent({ event: 'error', error: info(err) })
          return undefined
        }
        throw err
      }
    }
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
    let end = this.#wal.oldestSegmentEnd
    if (end === undefined || end <= this.#wal.ackedSeq) return undefined
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
   * Makes appended frames durable, off this thread: syncMode 'always' starts
   * a background fdatasync covering everything appended so far (group
   * commit: what is appended while it runs waits for the next one);
   * 'periodic' does so once the interval has passed; 'none' never. A failed
   * fdatasync is reported (an 'error' event per failing streak) and tried
   * again RETRY_IO_MS later; what it was to cover is not durable meanwhile.
   */
  commit(): void {
    if (!this.#dirty || this.#syncing || this.ioBlocked) return
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
        this.#ioFailing = false
        this.#lastSyncAt = performance.now()
        this.#metrics.recordFsync(this.#lastSyncAt - started)
        this.#gauges()
        this.#onSynced()
      },
      (err: unknown) => {
        this.#syncing = false
        this.#dirty = true
        if (err instanceof WalError && err.code === WalErrorCodes.USAGE) return // closed meanwhile
        if (!this.#ioFailing) {
          this.#onEvent({ event: 'error', error: info(err as WalError) })
        }
        this.#ioFailing = true
        this.#ioRetryAt = performance.now() + RETRY_IO_MS
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
    this.#ioFailing = false
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
   * read is unsettled) was delivered or dead-lettered: moves the watermark,
   * at most every ACK_INTERVAL_MS unless `force`.
   */
  settle(lowestUnsettled: number | undefined, force = false): void {
    const now = performance.now()
    if (!force && now - this.#lastAckAt < ACK_INTERVAL_MS) return
    const seq = this.#ackable(lowestUnsettled)
    if (force && seq > this.#wal.ackedSeq) {
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
    if (seq > this.#wal.ackedSeq) {
      this.#lastAckAt = now
      // The watermark's fdatasync runs in the background (a synchronous one
      // stalled this thread up to ~50 ms while a segment's sync ran). A failed
      // write only delays the deletion of delivered segments.
      this.#acking = true
      this.#wal.ackAsync(seq).then(
        () => {
          this.#acking = false
          this.#gauges()
        },
        (err: unknown) => {
          this.#acking = false
          if (err instanceof WalError && err.code === WalErrorCodes.USAGE) return // closed meanwhile
          if (!(err instanceof WalError) || err.code !== WalErrorCodes.IO) throw err
          this.#onEvent({ event: 'error', error: info(err) })
        },
      )
    }
  }

  #ackable(lowestUnsettled: number | undefined): number {
    return Math.min(lowestUnsettled ?? Number.POSITIVE_INFINITY, this.#reader.position)
  }

  /**
   * Milliseconds until `settle` would move the watermark (Infinity when it
   * has nothing to move): the pipeline must not sleep past an ack it owes.
   */
  ackDueInMs(lowestUnsettled: number | undefined): number {
    if (this.#ackable(lowestUnsettled) <= this.#wal.ackedSeq) return Number.POSITIVE_INFINITY
    return Math.max(0, this.#lastAckAt + ACK_INTERVAL_MS - performance.now())
  }

  #gauges(): void {
    this.#metrics.set(MetricSlot.WAL_SIZE, this.#wal.sizeBytes)
    this.#metrics.set(MetricSlot.WAL_PENDING, this.#wal.pendingItems)
    this.#metrics.set(MetricSlot.WAL_CORRUPT, this.#wal.corruptRegions + this.#skippedCorrupt)
  }

  /** Syncs and closes the log (what is in it is re-delivered at the next start). */
  close(): void {
    this.#reader.close()
    this.#ioFailing = false
    this.#io(() => this.#wal.close())
  }
}

function info(err: WalError): ErrorInfo {
  return { name: err.name, message: err.message, code: err.code }
}

import { type WalFrame, WriteAheadLog } from '@vinequeue/wal'
import { MetricSlot } from '../metrics/layout.ts'
import type { MetricsWriter } from '../metrics/writer.ts'
import type { PipelineConfig } from './protocol.ts'

/** Acknowledgements (a small fsync'ed file write) at most this often (ms). */
const ACK_INTERVAL_MS = 100

/**
 * The pipeline thread's use of the write-ahead log (WAL-first): every batch
 * is appended when it is cut and made durable by one fdatasync per pipeline
 * pass (group commit) before it is sent; the delivered watermark follows the
 * oldest unsettled batch. The pipeline thread is the log's one owner: it
 * already sees every batch in order, and a WAL thread of its own would add a
 * hop per batch and a third busy thread on this 2-core machine.
 */
export class WalStage {
  readonly #wal: WriteAheadLog
  readonly #always: boolean
  readonly #metrics: MetricsWriter
  readonly #recovered: Iterator<WalFrame>
  #nextRecovered: WalFrame | undefined
  #lastAckAt = 0
  #dirty = false

  constructor(config: NonNullable<PipelineConfig['wal']>, metrics: MetricsWriter) {
    this.#wal = WriteAheadLog.open(config.dir, {
      segmentBytes: config.segmentBytes,
      compression: config.compression,
      encryption: config.encryption,
    })
    this.#always = (config.syncMode ?? 'always') === 'always'
    this.#metrics = metrics
    const r = this.#wal.recovery
    metrics.set(MetricSlot.WAL_CORRUPT, r.corruptRegions)
    this.#recovered = this.#wal.frames()
    this.#nextRecovered = this.#pull()
    this.#gauges()
  }

  #pull(): WalFrame | undefined {
    const next = this.#recovered.next()
    return next.done ? undefined : next.value
  }

  /** The next frame to re-deliver (from before a restart), without taking it. */
  peekRecovered(): WalFrame | undefined {
    return this.#nextRecovered
  }

  /** Takes the frame `peekRecovered` returned. */
  takeRecovered(): WalFrame {
    const frame = this.#nextRecovered!
    this.#nextRecovered = this.#pull()
    this.#metrics.add(MetricSlot.RECOVERED, frame.count)
    return frame
  }

  /** Appends one batch; returns its first sequence number. Durable after `commit`. */
  append(bytes: Uint8Array, count: number): number {
    this.#dirty = true
    return this.#wal.append(bytes, count)
  }

  /** Group commit: one fdatasync for everything appended since the last one (syncMode 'always'). */
  commit(): void {
    if (!this.#dirty) return
    this.#dirty = false
    if (this.#always) {
      this.#wal.sync()
      this.#metrics.add(MetricSlot.FSYNCS, 1)
    }
    this.#gauges()
  }

  /**
   * Every item below `lowestUnsettled` (or everything appended, when nothing
   * is unsettled) was delivered or dead-lettered: moves the watermark, at
   * most every ACK_INTERVAL_MS unless `force`.
   */
  settle(lowestUnsettled: number | undefined, force = false): void {
    const now = performance.now()
    if (!force && now - this.#lastAckAt < ACK_INTERVAL_MS) return
    this.#lastAckAt = now
    let seq = lowestUnsettled ?? this.#wal.nextSeq
    if (this.#nextRecovered) seq = Math.min(seq, this.#nextRecovered.firstSeq)
    if (seq > this.#wal.ackedSeq) {
      this.#wal.ack(seq)
      this.#gauges()
    }
  }

  /**
   * Milliseconds until `settle` would move the watermark (Infinity when it
   * has nothing to move): the pipeline must not sleep past an ack it owes.
   */
  ackDueInMs(lowestUnsettled: number | undefined): number {
    let seq = lowestUnsettled ?? this.#wal.nextSeq
    if (this.#nextRecovered) seq = Math.min(seq, this.#nextRecovered.firstSeq)
    if (seq <= this.#wal.ackedSeq) return Number.POSITIVE_INFINITY
    return Math.max(0, this.#lastAckAt + ACK_INTERVAL_MS - performance.now())
  }

  #gauges(): void {
    this.#metrics.set(MetricSlot.WAL_SIZE, this.#wal.sizeBytes)
    this.#metrics.set(MetricSlot.WAL_PENDING, this.#wal.nextSeq - this.#wal.ackedSeq)
  }

  /** Syncs and closes the log (what is in it is re-delivered at the next start). */
  close(): void {
    this.#wal.close()
  }
}

import { WalError, WalErrorCodes } from '../errors.ts'
import { DamageKeeper } from './damage-keeper.ts'
import { releaseDirLock } from './dir-lock.ts'
import type { WalFs } from './fs.ts'
import { logIdentity } from './identity.ts'
import { resolveWalOptions, type WalOptions } from './options.ts'
import { type LogView, logView, type WalFrame, WalReader } from './reader.ts'
import { lockDir, type RecoveryReport, recordCleanClose, recover, recoveryReport } from './recover.ts'
import { Reserve } from './reserve.ts'
import { Retention } from './retention.ts'
import type { Segment } from './segment.ts'
import { SegmentWriter } from './segment-writer.ts'

/**
 * A segmented append-only log in one directory, for exactly one owner thread.
 * `append` writes a frame (not yet durable); `sync` makes everything appended
 * so far durable with one fdatasync (group commit); `ack` moves the delivered
 * watermark and deletes segments that hold only delivered items;
 * `recordAck` writes an acknowledgement into the segment, made durable by
 * the next sync (no fdatasync of its own); `frames` reads back what is not
 * acknowledged (after a restart: what to re-deliver).
 *
 * This class checks arguments and whether the log is open, and hands each
 * call to the part that owns it: recover.ts (open), segment-writer.ts
 * (append, rotation, sync), retention.ts (watermark, deletion), reader.ts,
 * damage-keeper.ts (damage found: quarantine, counts). They share the array
 * of segments.
 */
export class WriteAheadLog {
  readonly dir: string
  readonly recovery: RecoveryReport
  /**
   * The log's identity (32 hex digits, kept in its `id` file): with a
   * sequence number it names an item uniquely across logs and restarts.
   * Created with the directory; renewed only when the log cannot know how far
   * it had numbered (no segment left and the watermark missing or damaged),
   * since numbers may then repeat. See identity.ts.
   */
  readonly logId: string
  readonly #fs: WalFs
  readonly #segments: Segment[]
  readonly #keeper: DamageKeeper
  readonly #writer: SegmentWriter
  readonly #retention: Retention
  readonly #view: LogView
  #closed = false

  private constructor(dir: string, options: WalOptions) {
    this.dir = dir
    const { fs, segmentBytes, codec, deleteInBackground, onDamage } = resolveWalOptions(options)
    this.#fs = fs
    const reserve = new Reserve(fs, dir)
    const keeper = new DamageKeeper(fs, dir, reserve, () => this.ackedSeq, onDamage)
    this.#keeper = keeper
    lockDir(fs, dir, reserve)
    try {
      const found = recover(fs, dir, keeper)
      this.logId = logIdentity(fs, dir, reserve, found.continuous)
      const files = { fs, dir, segments: found.segments }
      this.#segments = files.segments
      const writer = new SegmentWriter(files, {
        segmentBytes,
        codec,
        nextSeq: found.nextSeq,
        ackedSeq: found.ackedSeq,
        hooks: {
          ackedSeq: () => this.#retention.ackedSeq,
          dropDelivered: () => this.#retention.dropDelivered(),
        },
      })
      this.#writer = writer
      const ackedSeq = found.fileAckedSeq
      this.#retention = new Retention(files, { reserve, keeper, writer, deleteInBackground, ackedSeq })
      this.#view = logView(fs, codec, files.segments, keeper, () => writer.nextSeq)
      if (found.ackedSeq > ackedSeq) {
        // An acknowledgement record is ahead of the file: the file catches up
        // (and what it covers may go). Best effort: without it the records
        // still count, but segments are only deleted below the file's value.
        try {
          this.#retention.ack(found.ackedSeq)
        } catch {}
      }
      // No segment is open for appending yet: a last segment already
      // delivered goes too.
      this.#retention.dropDelivered()
      reserve.keep()
      writer.resume()
      this.recovery = recoveryReport(found, files.segments.length, this.pendingItems, keeper.quarantined)
    } catch (err) {
      releaseDirLock(fs, dir)
      throw err
    }
  }

  /** Opens (creating if needed) the WAL in `dir`, recovering what is there. */
  static open(dir: string, options: WalOptions = {}): WriteAheadLog {
    return new WriteAheadLog(dir, options)
  }

  /** Sequence number the next appended item gets. */
  get nextSeq(): number {
    return this.#writer.nextSeq
  }

  /** Every item below this is durable (fdatasync'ed). */
  get syncedSeq(): number {
    return this.#writer.syncedSeq
  }

  /**
   * Every item below this was acknowledged (delivered), durably: in the `ack`
   * file, or in an acknowledgement record a sync has covered.
   */
  get ackedSeq(): number {
    return Math.max(this.#retention.ackedSeq, this.#writer.syncedAckSeq)
  }

  /**
   * The highest acknowledgement written to the log's files, synced or not:
   * a restart after a process crash (not a power cut) starts at least there.
   */
  get recordedAckSeq(): number {
    return Math.max(this.#writer.recordedAckSeq, this.#retention.writtenSeq, this.ackedSeq)
  }

  /** The watermark in the `ack` file (durable): segments are deleted only below it. */
  get ackFileSeq(): number {
    return this.#retention.ackedSeq
  }

  /** A segment is open for appending: `recordAck` writes there. */
  get appending(): boolean {
    return this.#writer.writing
  }

  /** Bytes in segment files. */
  get sizeBytes(): number {
    return this.#segments.reduce((sum, s) => sum + s.size, 0)
  }

  /**
   * Items not acknowledged yet (counted from sequence numbers: items of
   * damaged frames not reached by a reader yet are included).
   */
  get pendingItems(): number {
    const next = this.#writer.nextSeq
    const first = this.#segments[0]?.firstSeq ?? next
    return Math.max(0, next - Math.max(this.ackedSeq, first))
  }

  /** Damaged regions found so far: in the last segment at open, and by readers in older ones. */
  get corruptRegions(): number {
    return this.#keeper.corruptRegions
  }

  /** Gaps in sequence numbers found so far by readers (a missing segment, lost frames). */
  get gaps(): number {
    return this.#keeper.gaps
  }

  /** Items in those gaps. */
  get gapItems(): number {
    return this.#keeper.gapItems
  }

  /** Pieces of damage copied (or moved) to `quarantine/` so far. */
  get quarantined(): number {
    return this.#keeper.quarantined
  }

  /**
   * Where the oldest segment ends (the sequence number the watermark must
   * reach for it to be deleted); undefined when there is no segment. The one
   * being appended to ends at `nextSeq` and is only deleted once sealed.
   */
  get oldestSegmentEnd(): number | undefined {
    if (this.#segments.length === 0) return undefined
    return this.#segments[1]?.firstSeq ?? this.#writer.nextSeq
  }

  #checkOpen(): void {
    if (this.#closed) throw new WalError(WalErrorCodes.CLOSED, 'The WAL is closed')
  }

  /**
   * Appends one frame of `count` items (not durable until `sync`). Returns
   * the first item's sequence number.
   * @throws WalError (code VQ_WAL_IO) when the write fails; the log is then
   *   as it was before the call (a partial write is truncated away).
   */
  append(data: Uint8Array, count: number): number {
    this.#checkOpen()
    if (!Number.isInteger(count) || count < 1) {
      throw new WalError(WalErrorCodes.USAGE, `append: count must be a positive integer (got ${count})`)
    }
    return this.#writer.append(data, count)
  }

  /**
   * Closes the segment being appended to, so the next append starts a new
   * one (a log that must drop its oldest data can then delete a whole segment).
   */
  seal(): void {
    this.#checkOpen()
    this.#writer.seal()
  }

  /**
   * Group commit: one fdatasync makes every frame appended since the last
   * sync durable (segments closed by rotations since, and the directory
   * entries of new ones, first). Returns the synced watermark (every item
   * below it is durable).
   */
  sync(): number {
    this.#checkOpen()
    return this.#writer.sync()
  }

  /**
   * Group commit off the calling thread: the fdatasyncs in libuv's thread
   * pool, covering every frame appended before the call, so the owner thread
   * goes on appending meanwhile. Resolves with the synced watermark; rejects
   * with WalError IO. One runs at a time: a call while one runs waits for it,
   * then syncs what it did not cover.
   */
  syncAsync(): Promise<number> {
    this.#checkOpen()
    const running = this.#writer.running
    if (running) return running.then(() => this.syncAsync())
    return this.#writer.syncAsync()
  }

  /**
   * Records that every item below `seq` was delivered (the watermark written
   * over `ack` in place and fdatasync'ed), and deletes segments that hold
   * nothing else. Watermarks only move forward.
   * @throws WalError IO when the watermark cannot be written, or (with
   *   `deleteInBackground`) when an earlier background deletion failed: that
   *   call then does nothing else.
   */
  ack(seq: number): void {
    this.#checkOpen()
    this.#retention.ack(seq)
  }

  /**
   * Records that every item below `seq` was delivered in the segment being
   * appended to: a 32-byte record, not durable until the next `sync` or
   * `syncAsync` (which then moves `ackedSeq`), so a stream of
   * acknowledgements rides on the group commit of the appends instead of an
   * fdatasync each. Recovery takes the highest acknowledgement of the `ack`
   * file and of the records. Segments are still deleted only below the `ack`
   * file's watermark (`ack`, `ackAsync`). Returns false, writing nothing,
   * when no segment is open for appending (after `seal`, or before the first
   * append after an open): use `ack`/`ackAsync` then.
   * @throws WalError IO when the write fails (the log is as it was).
   */
  recordAck(seq: number): boolean {
    this.#checkOpen()
    if (!Number.isSafeInteger(seq) || seq < 0) {
      throw new WalError(WalErrorCodes.USAGE, `recordAck: seq must be a non-negative integer (got ${seq})`)
    }
    if (seq <= this.ackedSeq) return true
    return this.#writer.recordAck(seq)
  }

  /**
   * `ack` with the watermark's fdatasync in libuv's thread pool, then the
   * deletions on the calling thread. One at a time: rejects with WalError
   * USAGE while one runs (`ack` may run meanwhile). If the log is closed
   * before the sync returns, no segment is deleted for it (the watermark
   * written may or may not be on disk: either way nothing undelivered is
   * skipped).
   * @throws (rejects) WalError IO as `ack` does.
   */
  ackAsync(seq: number): Promise<void> {
    try {
      this.#checkOpen()
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#retention.ackAsync(seq, () => this.#closed)
  }

  /**
   * A cursor that reads frames in order from `fromSeq` (default: the
   * watermark), including frames appended after it was made. Older segments
   * are checked as it reaches them (damaged regions are skipped and counted).
   */
  reader(fromSeq: number = this.ackedSeq): WalReader {
    this.#checkOpen()
    return new WalReader(this.#view, fromSeq)
  }

  /**
   * Reads back, in order, every frame holding an item at or above `fromSeq`
   * (default: the watermark), decompressed and decrypted.
   * @throws WalError DECRYPT (wrong key, tampered frame) or KEY_MISSING.
   */
  *frames(fromSeq: number = this.ackedSeq): Generator<WalFrame> {
    const reader = this.reader(fromSeq)
    try {
      for (let f = reader.next(); f; f = reader.next()) yield f
    } finally {
      reader.close()
    }
  }

  /**
   * Syncs, brings the `ack` file up to the acknowledgement records, records
   * the clean close (`clean`), removes the pre-created next segment and
   * closes. Idempotent.
   */
  close(): void {
    if (this.#closed) return
    if (this.#writer.needsSync) this.sync()
    // After a clean close the last segment is not scanned at open: its
    // records must be in the file. If that write fails, no clean record
    // (the next open scans the last segment and finds them).
    let clean = true
    if (this.ackedSeq > this.#retention.ackedSeq) {
      try {
        this.#retention.ack(this.ackedSeq)
      } catch {
        clean = false
      }
    }
    if (this.#writer.writing) this.#writer.closeFd()
    this.#writer.close()
    if (clean) recordCleanClose(this.#fs, this.dir, this.#segments, this.#writer.nextSeq)
    releaseDirLock(this.#fs, this.dir)
    this.#closed = true
  }
}

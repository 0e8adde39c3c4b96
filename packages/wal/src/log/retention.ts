import { join } from 'node:path'
import { WalError, WalErrorCodes } from '../errors.ts'
import { encodeWatermark } from '../format/watermark.ts'
import type { DamageKeeper } from './damage-keeper.ts'
import type { WalFs } from './fs.ts'
import { ioError, syncInBackground, writeControlFile } from './io.ts'
import { ACK_FILE, FILE_MODE } from './layout.ts'
import type { Reserve } from './reserve.ts'
import type { LogFiles, Segment } from './segment.ts'

/** Creates `ack` (missing or damaged) as a control file: `ack.tmp`, fdatasync, rename. */
export function createWatermark(fs: WalFs, dir: string, seq: number): void {
  writeControlFile(fs, dir, ACK_FILE, encodeWatermark(seq), 'the watermark')
}

/** What retention needs of the segment writer. */
export interface WriterState {
  /** A segment is open for appending (the last one: never deleted while it is). */
  readonly writing: boolean
  readonly nextSeq: number
}

export interface RetentionOptions {
  readonly reserve: Reserve
  readonly keeper: DamageKeeper
  readonly writer: WriterState
  readonly deleteInBackground: boolean
  /** The watermark recovery read. */
  readonly ackedSeq: number
}

/**
 * The acknowledgement watermark (`ack`) and what follows from it: segments
 * holding only delivered items are deleted — once the damage found in them
 * is in quarantine.
 */
export class Retention {
  readonly #fs: WalFs
  readonly #dir: string
  readonly #segments: Segment[]
  readonly #reserve: Reserve
  readonly #keeper: DamageKeeper
  readonly #writer: WriterState
  readonly #deleteInBackground: boolean
  #ackedSeq: number
  /** The highest watermark written to `ack` (synced or not). */
  #writtenSeq: number
  /** An ackAsync is writing the watermark. */
  #acking = false
  /** A background deletion that failed, thrown by the next ack(). */
  #deleteError: WalError | undefined

  /** `files.segments`: delivered ones are deleted from the front. */
  constructor(files: LogFiles, options: RetentionOptions) {
    this.#fs = files.fs
    this.#dir = files.dir
    this.#segments = files.segments
    this.#reserve = options.reserve
    this.#keeper = options.keeper
    this.#writer = options.writer
    this.#deleteInBackground = options.deleteInBackground
    this.#ackedSeq = options.ackedSeq
    this.#writtenSeq = options.ackedSeq
  }

  /**
   * Every item below this was acknowledged, and the `ack` file says so
   * durably: segments are deleted only below it, so that a log whose
   * segments are all gone still numbers on from it.
   */
  get ackedSeq(): number {
    return this.#ackedSeq
  }

  /** The highest watermark written to `ack` (synced or not: a process crash keeps it). */
  get writtenSeq(): number {
    return this.#writtenSeq
  }

  /** `WriteAheadLog.ack` once the log is known to be open. */
  ack(seq: number): void {
    this.#throwDeleteError()
    if (seq <= this.#ackedSeq) return
    this.#writeWatermark(seq)
    this.#installWatermark(seq)
  }

  /**
   * Writes the watermark over `ack` in place and fdatasyncs it. In place,
   * not a new file renamed over it: overwriting the 16 bytes of an existing
   * file needs no new block, so acknowledgements — and the deletions that
   * give space back — still work on a full disk (where writing `ack.tmp`
   * failed with ENOSPC and nothing was ever deleted again). The record is
   * 16 bytes at offset 0, inside one disk sector, which devices write whole
   * (PostgreSQL writes its pg_control the same way); its CRC catches the
   * rest: a damaged watermark reads as 0, everything re-delivered.
   */
  #writeWatermark(seq: number): void {
    const value = Math.max(seq, this.#writtenSeq)
    const fd = this.#openWatermark()
    if (fd < 0) {
      this.#reserve.run(() => createWatermark(this.#fs, this.#dir, value))
      this.#writtenSeq = value
      return
    }
    try {
      const bytes = encodeWatermark(value)
      // (A copy-on-write file system needs a new block even to overwrite: the reserve.)
      this.#reserve.run(() => this.#fs.writeSync(fd, bytes, 0, bytes.byteLength, 0))
      this.#writtenSeq = value
      this.#fs.fdatasyncSync(fd)
    } catch (cause) {
      throw ioError('writing the watermark', cause)
    } finally {
      this.#fs.closeSync(fd)
    }
  }

  /** The `ack` file opened for writing in place, or -1 when it does not exist. */
  #openWatermark(): number {
    try {
      return this.#fs.openSync(join(this.#dir, ACK_FILE), 'r+', FILE_MODE)
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return -1
      throw ioError('opening the watermark', cause)
    }
  }

  /** A background deletion that failed is thrown once, by the next ack. */
  #throwDeleteError(): void {
    const err = this.#deleteError
    this.#deleteError = undefined
    if (err) throw err
  }

  /** The watermark `seq` is durable: delivered segments go. */
  #installWatermark(seq: number): void {
    this.#ackedSeq = seq
    this.dropDelivered()
  }

  /**
   * `WriteAheadLog.ackAsync` once the log is known to be open: the record
   * is written over `ack` in place here, synced in libuv's thread pool, then
   * delivered segments are deleted on this thread — unless `closed()` by
   * then (the watermark written may or may not be on disk: either way
   * nothing undelivered is skipped). A synchronous ack stalls its thread
   * while a segment's fdatasync runs (the journal commit flushes that
   * segment's data first). One at a time: rejects with WalError USAGE while
   * one runs (`ack` may run meanwhile).
   */
  ackAsync(seq: number, closed: () => boolean): Promise<void> {
    let fd: number
    try {
      if (this.#acking) throw new WalError(WalErrorCodes.USAGE, 'ackAsync: one is already running')
      this.#throwDeleteError()
      if (seq <= this.#ackedSeq) return Promise.resolve()
      fd = this.#openWatermark()
      if (fd < 0) {
        this.ack(seq) // (no `ack` file yet: created on the spot)
        return Promise.resolve()
      }
    } catch (err) {
      return Promise.reject(err)
    }
    this.#acking = true
    return (async () => {
      try {
        const value = Math.max(seq, this.#writtenSeq)
        const bytes = encodeWatermark(value)
        this.#reserve.run(() => this.#fs.writeSync(fd, bytes, 0, bytes.byteLength, 0))
        this.#writtenSeq = value
        await syncInBackground(this.#fs, fd, 'fdatasync')
      } catch (cause) {
        throw ioError('writing the watermark', cause)
      } finally {
        this.#acking = false
        try {
          this.#fs.closeSync(fd)
        } catch {}
      }
      if (!closed() && seq > this.#ackedSeq) this.#installWatermark(seq)
    })()
  }

  /**
   * Deletes every segment, but the one being appended to, whose items are
   * all acknowledged — once the damage found in it is in quarantine (a
   * segment whose copy failed stays until a later try succeeds; acknowledged
   * ones after it still go, so a full disk still gets space back).
   */
  dropDelivered(): void {
    const before = this.#segments.length
    this.#dropSegments()
    // Space came back (or soon will: background deletions): the reserve again.
    if (this.#segments.length < before) this.#reserve.keep()
  }

  #dropSegments(): void {
    const segments = this.#segments
    let i = 0
    while (i < segments.length) {
      const seg = segments[i]!
      if (this.#writer.writing && seg === segments.at(-1)) return
      // A segment ends where the next one starts (or at nextSeq for the last).
      const end = segments[i + 1]?.firstSeq ?? this.#writer.nextSeq
      if (end > this.#ackedSeq) return
      if (!this.#keeper.saveUnsaved(seg)) {
        i++
        continue
      }
      if (this.#deleteInBackground && this.#fs.unlink) {
        // Readers holding it open read on (an unlinked file lives while open).
        segments.splice(i, 1)
        this.#fs.unlink(seg.path, (err) => {
          if (err && err.code !== 'ENOENT') this.#deleteError ??= ioError(`deleting ${seg.path}`, err)
        })
        continue
      }
      try {
        this.#fs.unlinkSync(seg.path)
      } catch (cause) {
        throw ioError(`deleting ${seg.path}`, cause)
      }
      segments.splice(i, 1)
    }
  }
}

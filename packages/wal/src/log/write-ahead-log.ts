import { join } from 'node:path'
import { WalError, WalErrorCodes } from '../errors.ts'
import {
  type CleanClose,
  cleanCloseHolds,
  decodeCleanClose,
  encodeCleanClose,
} from '../format/clean-close.ts'
import { encodeFrame } from '../format/frame.ts'
import { checkCodecOptions, encodePayload, type PayloadCodecOptions } from '../format/payload-codec.ts'
import { isTornWrite, type SegmentScan, scanSegment, scanSegmentChunks } from '../format/segment-scan.ts'
import { decodeWatermark, encodeWatermark } from '../format/watermark.ts'
import { DamageKeeper } from './damage-keeper.ts'
import { acquireDirLock, releaseDirLock } from './dir-lock.ts'
import { nodeFs, type WalFs } from './fs.ts'
import type { WalDamage } from './quarantine.ts'
import { Reserve } from './reserve.ts'
import { type FrameRef, ioError, type Segment, type WalFrame, WalReader } from './wal-reader.ts'

export type { WalFrame } from './wal-reader.ts'
export { WalReader } from './wal-reader.ts'

export interface WalOptions extends PayloadCodecOptions {
  /** A segment is closed and a new one started past this size. Default 64 MiB. */
  readonly segmentBytes?: number
  /** File-system layer (tests inject faults through it). Default node:fs. */
  readonly fs?: WalFs
  /**
   * Delete acknowledged segments in libuv's thread pool instead of on the
   * calling thread: unlinking a synced 64 MiB file took ~29 ms here (ext4
   * freeing its extents), a stall for a thread that also appends. `ack()`
   * returns before the file is gone; a failed deletion is thrown (WalError IO)
   * by the next `ack()`, and the file, acknowledged, is deleted at the next
   * open. Default false (deleted before `ack()` returns).
   */
  readonly deleteInBackground?: boolean
  /**
   * Called (on the owner thread, during `open` too) for each piece of damage
   * found: a damaged region, a frame quarantined, misplaced frames, a gap in
   * sequence numbers, a stray file. Counted in `gaps` and `quarantined`
   * whether or not it is given.
   */
  readonly onDamage?: (damage: WalDamage) => void
}

/** What opening found on disk. */
export interface RecoveryReport {
  readonly segments: number
  /** Frames in the last segment (the one scanned at open). */
  readonly frames: number
  /**
   * Items not yet acknowledged: exact for the last segment, from segment
   * names for older ones (an upper bound until they are read: damaged frames
   * in them are found and counted by a reader).
   */
  readonly pendingItems: number
  /** Damaged regions skipped in the last segment (their items are lost; never parsed as data). */
  readonly corruptRegions: number
  /** Bytes of torn tail truncated (a write the crash cut short). */
  readonly truncatedBytes: number
  /** The watermark file was missing or damaged: everything is re-delivered. */
  readonly watermarkReset: boolean
  /**
   * The log was closed cleanly (its `clean` record matched the last segment):
   * that segment was not scanned at open (`frames` is 0); a reader checks it
   * when it reaches it, and appends go to a new segment.
   */
  readonly cleanClose: boolean
  /** Pieces of damage copied (or moved) to `quarantine/` while opening. */
  readonly quarantined: number
}

const SEGMENT_SUFFIX = '.wal'
const SEGMENT_NAME = /^\d{20}\.wal$/
const FILE_MODE = 0o600
const DIR_MODE = 0o700

function segmentName(firstSeq: number): string {
  return `${String(firstSeq).padStart(20, '0')}${SEGMENT_SUFFIX}`
}

/** Closed segments that may wait for the next sync; past this a rotation syncs the oldest itself. */
const MAX_UNSYNCED = 4

/**
 * A segmented append-only log in one directory, for exactly one owner thread.
 * `append` writes a frame (not yet durable); `sync` makes everything appended
 * so far durable with one fdatasync (group commit); `ack` moves the delivered
 * watermark and deletes segments that hold only delivered items; `frames`
 * reads back what is not acknowledged (after a restart: what to re-deliver).
 */
export class WriteAheadLog {
  readonly dir: string
  readonly #fs: WalFs
  readonly #segmentBytes: number
  readonly #codec: PayloadCodecOptions
  readonly #segments: Segment[] = []
  readonly #deleteInBackground: boolean
  /** A background deletion that failed, thrown by the next ack(). */
  #deleteError: WalError | undefined
  #fd = -1
  #nextSeq = 0
  #syncedSeq = 0
  #ackedSeq = 0
  #closed = false
  #corruptRegions = 0
  /** The background fdatasync running, if any (syncAsync). */
  #syncing: Promise<number> | undefined
  /** Descriptors of closed segments, closed once the background fdatasync returns. */
  readonly #deferredClose: number[] = []
  /** Descriptors of segments closed by a rotation with frames not fdatasync'ed yet (the next sync does). */
  readonly #unsynced: number[] = []
  /** A segment was created since the directory was last fsync'ed (the next sync does). */
  #dirDirty = false
  /** An ackAsync is writing the watermark. */
  #acking = false
  /** The highest watermark written to `ack` (synced or not). */
  #writtenSeq = 0
  readonly #reserve: Reserve
  /** Damage found: copied to quarantine, reported, counted. */
  readonly #keeper: DamageKeeper
  readonly recovery: RecoveryReport

  private constructor(dir: string, options: WalOptions) {
    this.dir = dir
    this.#fs = options.fs ?? nodeFs
    this.#segmentBytes = options.segmentBytes ?? 64 * 1024 * 1024
    this.#deleteInBackground = options.deleteInBackground ?? false
    this.#reserve = new Reserve(this.#fs, dir)
    this.#keeper = new DamageKeeper(this.#fs, dir, this.#reserve, () => this.#ackedSeq, options.onDamage)
    checkCodecOptions(options)
    this.#codec = { compression: options.compression ?? false, encryption: options.encryption }
    if (!Number.isInteger(this.#segmentBytes) || this.#segmentBytes < 4096) {
      throw new WalError(
        WalErrorCodes.USAGE,
        `segmentBytes must be an integer ≥ 4096 (got ${this.#segmentBytes})`,
      )
    }
    this.recovery = this.#recover()
  }

  /** Opens (creating if needed) the WAL in `dir`, recovering what is there. */
  static open(dir: string, options: WalOptions = {}): WriteAheadLog {
    return new WriteAheadLog(dir, options)
  }

  /**
   * Opening reads the watermark, lists the segments and scans only the last
   * one (where a crash can leave a torn tail, cut here so appends continue
   * after the last valid frame). Older segments were complete when the next
   * one was started; a reader checks them frame by frame when it reaches
   * them, so opening a log with a large backlog takes milliseconds.
   */
  #recover(): RecoveryReport {
    const fs = this.#fs
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: DIR_MODE })
    } catch (cause) {
      throw ioError(`mkdir ${this.dir}`, cause)
    }
    this.#reserve.run(() => acquireDirLock(fs, this.dir))
    try {
      return this.#recoverLocked()
    } catch (err) {
      if (this.#fd >= 0) this.#fs.closeSync(this.#fd)
      releaseDirLock(fs, this.dir)
      throw err
    }
  }

  #recoverLocked(): RecoveryReport {
    const fs = this.#fs
    let watermarkReset = false
    let watermarkOk = false
    try {
      const acked = decodeWatermark(fs.readFileSync(join(this.dir, 'ack')))
      if (acked === undefined) watermarkReset = true
      else {
        this.#ackedSeq = acked
        watermarkOk = true
      }
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('reading the watermark', cause)
    }
    this.#writtenSeq = this.#ackedSeq
    if (!watermarkOk) {
      // Later acknowledgements overwrite this file in place, which needs no
      // new block: a full disk cannot stop the watermark (and with it the
      // deletion that frees space). Best effort here: without it the first
      // ack creates the file.
      try {
        this.#createWatermark(this.#ackedSeq)
      } catch {}
    }
    let names: string[]
    try {
      names = fs
        .readdirSync(this.dir)
        .filter((n) => SEGMENT_NAME.test(n))
        .sort()
    } catch (cause) {
      throw ioError(`listing ${this.dir}`, cause)
    }
    // A segment's name is its first sequence number: one past 2^53 cannot be
    // (a stray file); it would poison every sequence number after it.
    for (const name of names.filter((n) => !Number.isSafeInteger(Number.parseInt(n, 10)))) {
      this.#keeper.moveStray(name)
    }
    names = names.filter((n) => Number.isSafeInteger(Number.parseInt(n, 10)))
    let corruptRegions = 0
    let truncatedBytes = 0
    let frames = 0
    let cleanClose = false
    const clean = this.#readCleanClose()
    for (const [i, name] of names.entries()) {
      const path = join(this.dir, name)
      const firstSeq = Number.parseInt(name, 10)
      this.#nextSeq = Math.max(this.#nextSeq, firstSeq)
      const last = i === names.length - 1
      // Older segments, and a last one closed cleanly and untouched since, are
      // not scanned now: a reader checks them when it reaches them.
      const size =
        !last || clean?.firstSeq === firstSeq ? this.#withFd(path, 'r', (fd) => fs.fstatSizeSync(fd)) : -1
      if (!last || cleanCloseHolds(clean, firstSeq, size)) {
        this.#segments.push({ name, path, firstSeq, frames: undefined, size, unsaved: [] })
        if (last) {
          this.#nextSeq = Math.max(this.#nextSeq, clean!.nextSeq) // (appends start a new segment)
          cleanClose = true
        }
        continue
      }
      const scan = this.#scanFile(path)
      const seg: Segment = { name, path, firstSeq, frames: undefined, size: scan.validEnd, unsaved: [] }
      corruptRegions += scan.corruptRegions
      for (const d of scan.damaged.slice(0, scan.corruptRegions))
        this.#keeper.save(seg, d.start, d.end, 'corrupt')
      seg.frames = this.#keeper.checkFrames(seg, scan.frames, undefined)
      frames += seg.frames.length
      if (scan.tornBytes > 0) {
        const tornEnd = scan.validEnd + scan.tornBytes
        if (!isTornWrite(this.#keeper.readRange(path, scan.validEnd, tornEnd))) {
          // Not a write cut short: damage. Kept before the cut (or the open fails).
          let quarantined: string
          try {
            quarantined = this.#keeper.copy(seg, scan.validEnd, tornEnd, 'corrupt')
          } catch (cause) {
            throw ioError(`copying damaged bytes of ${name} to quarantine`, cause)
          }
          this.#keeper.report({
            kind: 'corrupt',
            segment: name,
            start: scan.validEnd,
            end: tornEnd,
            quarantined,
            message: `${name} bytes ${scan.validEnd}–${tornEnd} (${scan.tornBytes} B) after its last valid frame hold no valid frame and are not a write cut short (damaged): copied to ${quarantined}, then cut`,
          })
        }
        // Cut the torn tail so appends continue after the last valid frame.
        this.#withFd(path, 'r+', (fd) => {
          fs.ftruncateSync(fd, scan.validEnd)
          fs.fdatasyncSync(fd)
        })
        truncatedBytes += scan.tornBytes
      }
      this.#segments.push(seg)
      for (const f of seg.frames) {
        this.#nextSeq = Math.max(this.#nextSeq, f.header.firstSeq + f.header.count)
      }
    }
    this.#corruptRegions = corruptRegions
    this.#keeper.floor = watermarkOk ? this.#ackedSeq : (this.#segments[0]?.firstSeq ?? this.#nextSeq)
    // The watermark can be ahead of the data (frames lost to damage) or behind it.
    this.#nextSeq = Math.max(this.#nextSeq, this.#ackedSeq)
    this.#syncedSeq = this.#nextSeq
    this.#dropAcknowledgedSegments()
    this.#reserve.keep()
    // Keep appending to the last segment if it was scanned and has room, else start a new one.
    const tail = this.#segments.at(-1)
    if (tail?.frames && tail.size < this.#segmentBytes) {
      try {
        this.#fd = fs.openSync(tail.path, 'r+', FILE_MODE)
      } catch (cause) {
        throw ioError(`opening ${tail.path}`, cause)
      }
    }
    return {
      segments: this.#segments.length,
      frames,
      pendingItems: this.pendingItems,
      corruptRegions,
      truncatedBytes,
      watermarkReset,
      cleanClose,
      quarantined: this.#keeper.quarantined,
    }
  }

  /** The `clean` record, or undefined when missing, unreadable or damaged (the last segment is then scanned). */
  #readCleanClose(): CleanClose | undefined {
    try {
      return decodeCleanClose(this.#fs.readFileSync(join(this.dir, 'clean')))
    } catch {
      return undefined
    }
  }

  /**
   * Records a clean close (everything durable): best effort, since without
   * the record the next open only scans the last segment. Written to
   * `clean.tmp`, fdatasync'ed, renamed over `clean`.
   */
  #writeCleanClose(): void {
    const tail = this.#segments.at(-1)
    if (!tail || tail.size === 0) return
    const tmp = join(this.dir, 'clean.tmp')
    try {
      this.#withFd(tmp, 'w', (fd) => {
        const bytes = encodeCleanClose({ firstSeq: tail.firstSeq, size: tail.size, nextSeq: this.#nextSeq })
        this.#fs.writeSync(fd, bytes, 0, bytes.byteLength, 0)
        this.#fs.fdatasyncSync(fd)
      })
      this.#fs.renameSync(tmp, join(this.dir, 'clean'))
    } catch {}
  }

  /**
   * Checks every frame of a segment file: a chunk at a time while it is
   * undamaged, the whole file with resynchronisation past damage otherwise.
   */
  #scanFile(path: string): SegmentScan {
    const fs = this.#fs
    try {
      const fd = fs.openSync(path, 'r', FILE_MODE)
      let scan: SegmentScan | undefined
      try {
        scan = scanSegmentChunks(fs.fstatSizeSync(fd), (into, position) =>
          fs.readSync(fd, into, 0, into.byteLength, position),
        )
      } finally {
        fs.closeSync(fd)
      }
      return scan ?? scanSegment(fs.readFileSync(path))
    } catch (cause) {
      throw ioError(`reading ${path}`, cause)
    }
  }

  #withFd<T>(path: string, flags: string, fn: (fd: number) => T): T {
    let fd: number
    try {
      fd = this.#fs.openSync(path, flags, FILE_MODE)
    } catch (cause) {
      throw ioError(`opening ${path}`, cause)
    }
    try {
      return fn(fd)
    } catch (cause) {
      throw cause instanceof WalError ? cause : ioError(`writing ${path}`, cause)
    } finally {
      this.#fs.closeSync(fd)
    }
  }

  /** Sequence number the next appended item gets. */
  get nextSeq(): number {
    return this.#nextSeq
  }

  /** Every item below this is durable (fdatasync'ed). */
  get syncedSeq(): number {
    return this.#syncedSeq
  }

  /** Every item below this was acknowledged (delivered). */
  get ackedSeq(): number {
    return this.#ackedSeq
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
    const first = this.#segments[0]?.firstSeq ?? this.#nextSeq
    return Math.max(0, this.#nextSeq - Math.max(this.#ackedSeq, first))
  }

  /** Damaged regions found so far: in the last segment at open, and by readers in older ones. */
  get corruptRegions(): number {
    return this.#corruptRegions
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

  #checkOpen(): void {
    if (this.#closed) throw new WalError(WalErrorCodes.USAGE, 'The WAL is closed')
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
    const firstSeq = this.#nextSeq
    // Compressed and/or encrypted as configured; flags and key id go in the header.
    const { payload, flags, keyId } = encodePayload(data, { firstSeq, count }, this.#codec)
    const frame = encodeFrame(payload, { flags, keyId, firstSeq, count })
    let seg = this.#segments.at(-1)
    if (this.#fd < 0 || !seg || (seg.size > 0 && seg.size + frame.byteLength > this.#segmentBytes)) {
      seg = this.#rotate(firstSeq)
    }
    const refs = seg.frames!
    const at = seg.size
    try {
      let done = 0
      while (done < frame.byteLength) {
        done += this.#fs.writeSync(this.#fd, frame, done, frame.byteLength - done, at + done)
      }
    } catch (cause) {
      // Leave no partial frame behind (best effort: recovery would cut it too).
      try {
        this.#fs.ftruncateSync(this.#fd, at)
      } catch {}
      if ((cause as NodeJS.ErrnoException).code === 'ENOSPC' && this.#ackedSeq >= firstSeq && at > 0) {
        // The disk is full and the segment being written holds only delivered
        // items: close it so it can be deleted now (the next append starts a
        // new one). Otherwise it would hold its space until the next append
        // succeeded, which needs that space.
        this.#closeFd()
        this.#dropAcknowledgedSegments()
      }
      throw ioError('append', cause)
    }
    seg.size += frame.byteLength
    refs.push({
      header: {
        flags,
        keyId,
        firstSeq,
        count,
        length: payload.byteLength,
      },
      offset: at,
    })
    this.#nextSeq = firstSeq + count
    return firstSeq
  }

  /**
   * Where the oldest segment ends (the sequence number the watermark must
   * reach for it to be deleted); undefined when there is no segment. The one
   * being appended to ends at `nextSeq` and is only deleted once sealed.
   */
  get oldestSegmentEnd(): number | undefined {
    if (this.#segments.length === 0) return undefined
    return this.#segments[1]?.firstSeq ?? this.#nextSeq
  }

  /**
   * Closes the segment being appended to, so the next append starts a new
   * one (a log that must drop its oldest data can then delete a whole segment).
   */
  seal(): void {
    this.#checkOpen()
    if (this.#fd < 0) return
    this.sync()
    this.#closeFd()
  }

  /**
   * Closes the segment being written. While a background fdatasync runs on
   * it the descriptor stays open (closing it could let the number be reused
   * under that sync) and is closed when the sync returns.
   */
  #closeFd(): void {
    this.#release(this.#fd)
    this.#fd = -1
  }

  /**
   * Closes the current segment and starts a new one. Nothing is synced here
   * (an fdatasync of the old segment and an fsync of the directory took
   * 30-80 ms here, a stall of every append behind them): the old segment's
   * descriptor waits in #unsynced and the directory is marked dirty; the next
   * sync makes both durable before it claims anything (`syncedSeq`).
   */
  #rotate(firstSeq: number): Segment {
    if (this.#fd >= 0) {
      if (this.#syncedSeq < this.#nextSeq || this.#syncing) this.#unsynced.push(this.#fd)
      else this.#release(this.#fd)
      this.#fd = -1
      // A log nobody syncs (syncMode 'none') would keep every old descriptor open: bounded here.
      while (this.#unsynced.length > MAX_UNSYNCED) {
        const oldest = this.#unsynced.shift()!
        try {
          this.#fs.fdatasyncSync(oldest)
        } catch (cause) {
          this.#unsynced.unshift(oldest)
          throw ioError('fdatasync', cause)
        }
        this.#release(oldest)
      }
    }
    const name = segmentName(firstSeq)
    const path = join(this.dir, name)
    try {
      this.#fd = this.#fs.openSync(path, 'wx+', FILE_MODE)
    } catch (cause) {
      throw ioError(`creating ${path}`, cause)
    }
    this.#dirDirty = true
    const seg: Segment = { name, path, firstSeq, frames: [], size: 0, unsaved: [] }
    this.#segments.push(seg)
    return seg
  }

  /** Closes a descriptor, or defers that to the end of the background sync that may still use it. */
  #release(fd: number): void {
    if (this.#syncing) this.#deferredClose.push(fd)
    else {
      try {
        this.#fs.closeSync(fd)
      } catch {}
    }
  }

  /**
   * Group commit: one fdatasync makes every frame appended since the last
   * sync durable — first those of segments closed since (each fdatasync'ed,
   * then closed), then the directory entries of segments created since, then
   * the current segment. Returns the synced watermark (every item below it
   * is durable).
   */
  sync(): number {
    this.#checkOpen()
    const target = this.#nextSeq
    try {
      while (this.#unsynced.length > 0) {
        const fd = this.#unsynced[0]!
        this.#fs.fdatasyncSync(fd)
        this.#unsynced.shift()
        this.#release(fd)
      }
      if (this.#dirDirty) {
        this.#withFd(this.dir, 'r', (fd) => this.#fs.fsyncSync(fd))
        this.#dirDirty = false
      }
      if (this.#syncedSeq < target && this.#fd >= 0) this.#fs.fdatasyncSync(this.#fd)
    } catch (cause) {
      throw cause instanceof WalError ? cause : ioError('fdatasync', cause)
    }
    this.#syncedSeq = Math.max(this.#syncedSeq, target)
    return this.#syncedSeq
  }

  /**
   * Group commit off the calling thread: an fdatasync in the background
   * (libuv's thread pool) covering every frame appended before the call, so
   * the owner thread goes on appending meanwhile. Resolves with the synced
   * watermark; rejects with WalError IO. One runs at a time: a call while one
   * runs waits for it, then syncs what it did not cover.
   */
  syncAsync(): Promise<number> {
    this.#checkOpen()
    if (this.#syncing) return this.#syncing.then(() => this.syncAsync())
    const target = this.#nextSeq
    const closed = this.#unsynced.slice()
    const dir = this.#dirDirty
    const fd = this.#syncedSeq < target ? this.#fd : -1
    if (closed.length === 0 && !dir && fd < 0) {
      this.#syncedSeq = Math.max(this.#syncedSeq, target)
      return Promise.resolve(this.#syncedSeq)
    }
    this.#dirDirty = false
    const syncing = (async () => {
      try {
        for (const c of closed) await this.#inBackground(c, 'fdatasync')
        if (dir) {
          const dirFd = this.#fs.openSync(this.dir, 'r')
          try {
            await this.#inBackground(dirFd, 'fsync')
          } finally {
            this.#fs.closeSync(dirFd)
          }
        }
        if (fd >= 0) await this.#inBackground(fd, 'fdatasync')
      } catch (err) {
        if (dir) this.#dirDirty = true // (the closed segments stay in #unsynced: the next sync tries again)
        throw ioError('fdatasync', err)
      } finally {
        this.#syncing = undefined
        for (const stale of this.#deferredClose.splice(0)) {
          try {
            this.#fs.closeSync(stale)
          } catch {}
        }
      }
      for (const c of closed) {
        const at = this.#unsynced.indexOf(c)
        if (at >= 0) {
          this.#unsynced.splice(at, 1)
          this.#release(c)
        }
      }
      this.#syncedSeq = Math.max(this.#syncedSeq, target)
      return this.#syncedSeq
    })()
    this.#syncing = syncing
    return syncing
  }

  /**
   * fdatasync or fsync of `fd` in libuv's thread pool; synchronously on this
   * thread for a file-system layer without the callback forms.
   */
  #inBackground(fd: number, call: 'fdatasync' | 'fsync'): Promise<void> {
    const fs = this.#fs
    const background = call === 'fdatasync' ? fs.fdatasync : fs.fsync
    if (!background) {
      try {
        if (call === 'fdatasync') fs.fdatasyncSync(fd)
        else fs.fsyncSync(fd)
        return Promise.resolve()
      } catch (err) {
        return Promise.reject(err)
      }
    }
    return new Promise((resolve, reject) => background.call(fs, fd, (err) => (err ? reject(err) : resolve())))
  }

  /**
   * Records that every item below `seq` was delivered, and deletes segments
   * that hold nothing else. Watermarks only move forward.
   * @throws WalError IO when the watermark cannot be written, or (with
   *   `deleteInBackground`) when an earlier background deletion failed: that
   *   call then does nothing else.
   */
  ack(seq: number): void {
    this.#checkOpen()
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
      this.#reserve.run(() => this.#createWatermark(value))
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
      return this.#fs.openSync(join(this.dir, 'ack'), 'r+', FILE_MODE)
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return -1
      throw ioError('opening the watermark', cause)
    }
  }

  /** Creates `ack` (missing or damaged): written to `ack.tmp`, fdatasync'ed, renamed over it. */
  #createWatermark(seq: number): void {
    const tmp = join(this.dir, 'ack.tmp')
    this.#withFd(tmp, 'w', (fd) => {
      const bytes = encodeWatermark(seq)
      this.#fs.writeSync(fd, bytes, 0, bytes.byteLength, 0)
      this.#fs.fdatasyncSync(fd)
    })
    try {
      this.#fs.renameSync(tmp, join(this.dir, 'ack'))
    } catch (cause) {
      throw ioError('renaming the watermark', cause)
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
    this.#dropAcknowledgedSegments()
  }

  /**
   * `ack` with the watermark's fdatasync in libuv's thread pool: the record
   * is written over `ack` in place here, synced in the background, then
   * delivered segments are deleted on this thread. A synchronous ack stalled
   * its thread up to ~50 ms here whenever a segment's fdatasync was running
   * (ext4 commits the journal, and with it that segment's data, first).
   * One at a time: rejects with WalError USAGE while one runs (`ack` may run
   * meanwhile). If the log is closed before the sync returns, no segment is
   * deleted for it (the watermark written may or may not be on disk: either
   * way nothing undelivered is skipped).
   * @throws (rejects) WalError IO as `ack` does.
   */
  ackAsync(seq: number): Promise<void> {
    let fd: number
    try {
      this.#checkOpen()
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
        await this.#inBackground(fd, 'fdatasync')
      } catch (cause) {
        throw ioError('writing the watermark', cause)
      } finally {
        this.#acking = false
        try {
          this.#fs.closeSync(fd)
        } catch {}
      }
      if (!this.#closed && seq > this.#ackedSeq) this.#installWatermark(seq)
    })()
  }

  /**
   * Deletes every segment, but the one being appended to, whose items are
   * all acknowledged — once the damage found in it is in quarantine (a
   * segment whose copy failed stays until a later try succeeds; acknowledged
   * ones after it still go, so a full disk still gets space back).
   */
  #dropAcknowledgedSegments(): void {
    const before = this.#segments.length
    this.#dropSegments()
    // Space came back (or soon will: background deletions): the reserve again.
    if (this.#segments.length < before) this.#reserve.keep()
  }

  #dropSegments(): void {
    let i = 0
    while (i < this.#segments.length) {
      const seg = this.#segments[i]!
      if (this.#fd >= 0 && seg === this.#segments.at(-1)) return
      // A segment ends where the next one starts (or at nextSeq for the last).
      const end = this.#segments[i + 1]?.firstSeq ?? this.#nextSeq
      if (end > this.#ackedSeq) return
      if (!this.#keeper.saveUnsaved(seg)) {
        i++
        continue
      }
      if (this.#deleteInBackground && this.#fs.unlink) {
        // Readers holding it open read on (an unlinked file lives while open).
        this.#segments.splice(i, 1)
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
      this.#segments.splice(i, 1)
    }
  }

  /**
   * A cursor that reads frames in order from `fromSeq` (default: the
   * watermark), including frames appended after it was made. Older segments
   * are checked as it reaches them (damaged regions are skipped and counted).
   */
  reader(fromSeq: number = this.#ackedSeq): WalReader {
    this.#checkOpen()
    return new WalReader(
      {
        segments: this.#segments,
        fs: this.#fs,
        codec: this.#codec,
        scan: (seg) => this.#scanDeferred(seg),
        nextSeq: () => this.#nextSeq,
        gap: (from, to, before) => this.#keeper.gap(from, to, before),
        quarantine: (seg, ref) => this.#keeper.quarantineFrame(seg, ref),
      },
      fromSeq,
    )
  }

  /** Reads and checks a segment older than the last one, the first time a reader reaches it. */
  #scanDeferred(seg: Segment): FrameRef[] {
    if (seg.frames) return seg.frames
    const scan = this.#scanFile(seg.path)
    // A segment that was followed by another was complete: a torn end is damage.
    this.#corruptRegions += scan.corruptRegions + (scan.tornBytes > 0 ? 1 : 0)
    const next = this.#segments[this.#segments.indexOf(seg) + 1]
    seg.frames = this.#keeper.checkFrames(seg, scan.frames, next?.firstSeq)
    for (const d of scan.damaged) this.#keeper.save(seg, d.start, d.end, 'corrupt')
    return seg.frames
  }

  /**
   * Reads back, in order, every frame holding an item at or above `fromSeq`
   * (default: the watermark), decompressed and decrypted.
   * @throws WalError DECRYPT (wrong key, tampered frame) or KEY_MISSING.
   */
  *frames(fromSeq: number = this.#ackedSeq): Generator<WalFrame> {
    const reader = this.reader(fromSeq)
    try {
      for (let f = reader.next(); f; f = reader.next()) yield f
    } finally {
      reader.close()
    }
  }

  /** Syncs and closes. Idempotent. */
  close(): void {
    if (this.#closed) return
    if (this.#fd >= 0 || this.#unsynced.length > 0 || this.#dirDirty) this.sync()
    if (this.#fd >= 0) this.#closeFd()
    this.#writeCleanClose()
    releaseDirLock(this.#fs, this.dir)
    this.#closed = true
  }
}

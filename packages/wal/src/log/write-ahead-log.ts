import { join } from 'node:path'
import { WalError, WalErrorCodes } from '../errors.ts'
import {
  type CleanClose,
  cleanCloseHolds,
  decodeCleanClose,
  encodeCleanClose,
} from '../format/clean-close.ts'
import { encodeFrame, FRAME_HEADER_BYTES, type FrameHeader } from '../format/frame.ts'
import {
  checkCodecOptions,
  decodePayload,
  encodePayload,
  type PayloadCodecOptions,
} from '../format/payload-codec.ts'
import {
  isTornWrite,
  type ScannedFrame,
  type SegmentScan,
  scanSegment,
  scanSegmentChunks,
} from '../format/segment-scan.ts'
import { decodeWatermark, encodeWatermark } from '../format/watermark.ts'
import { acquireDirLock, releaseDirLock } from './dir-lock.ts'
import { nodeFs, type WalFs } from './fs.ts'
import {
  moveToQuarantine,
  quarantineName,
  type WalDamage,
  type WalDamageKind,
  writeQuarantine,
} from './quarantine.ts'

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

/** A frame read back: `count` items from `firstSeq`, the payload as written. */
export interface WalFrame extends FrameHeader {
  readonly payload: Uint8Array
}

interface FrameRef {
  readonly header: FrameHeader
  readonly offset: number
}

interface Segment {
  readonly name: string
  readonly path: string
  /** Sequence number of its first item (from its name). */
  readonly firstSeq: number
  /**
   * Its frames, once scanned. Segments older than the last one are not read
   * at open (that is what lets a large backlog open fast): a reader scans
   * each one when it gets there.
   */
  frames: FrameRef[] | undefined
  size: number
  /**
   * Damaged byte ranges not copied to quarantine yet (the copy failed:
   * ENOSPC…). The segment is not deleted until they are.
   */
  readonly unsaved: Array<{ start: number; end: number; kind: WalDamageKind }>
}

const SEGMENT_SUFFIX = '.wal'
const SEGMENT_NAME = /^\d{20}\.wal$/
const FILE_MODE = 0o600
const DIR_MODE = 0o700

function segmentName(firstSeq: number): string {
  return `${String(firstSeq).padStart(20, '0')}${SEGMENT_SUFFIX}`
}

/**
 * A file of this many zeros, `reserve`, kept in the directory: given back
 * when the log's own bookkeeping meets ENOSPC (the lock at open, creating
 * the watermark, a copy to quarantine), so a full disk never keeps the log
 * from starting or from recording what was delivered. Made again (best
 * effort) at open and once deletions have given space back.
 */
const RESERVE_BYTES = 64 * 1024
const RESERVE_NAME = 'reserve'

function isNoSpace(err: unknown): boolean {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | undefined
  return e?.code === 'ENOSPC' || e?.cause?.code === 'ENOSPC'
}

/** Closed segments that may wait for the next sync; past this a rotation syncs the oldest itself. */
const MAX_UNSYNCED = 4

function ioError(what: string, cause: unknown): WalError {
  return new WalError(WalErrorCodes.IO, `WAL ${what} failed: ${(cause as Error).message}`, { cause })
}

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
  readonly #onDamage: ((damage: WalDamage) => void) | undefined
  /** Gaps found in sequence numbers, and the items they cover. */
  #gaps = 0
  #gapItems = 0
  /** Gaps are reported once: every one below this was. */
  #gapReportedTo = 0
  /**
   * No gap is reported below this: the watermark read at open, or, when it
   * was missing or damaged, the first segment's start (what came before was
   * delivered and deleted, or cannot be known).
   */
  #gapFloor = 0
  /** Pieces of damage copied or moved to quarantine. */
  #quarantined = 0
  /** The reserve file is there (or making it failed for a reason other than space). */
  #reserved = false
  readonly recovery: RecoveryReport

  private constructor(dir: string, options: WalOptions) {
    this.dir = dir
    this.#fs = options.fs ?? nodeFs
    this.#segmentBytes = options.segmentBytes ?? 64 * 1024 * 1024
    this.#deleteInBackground = options.deleteInBackground ?? false
    this.#onDamage = options.onDamage
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
    this.#withReserve(() => acquireDirLock(fs, this.dir))
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
      let moved: string
      try {
        moved = moveToQuarantine(fs, this.dir, name)
      } catch (cause) {
        throw ioError(`moving the stray file ${name} to quarantine`, cause)
      }
      this.#quarantined++
      this.#damage({
        kind: 'stray',
        segment: name,
        quarantined: moved,
        message: `${name} is named past 2^53, so it cannot be a segment of this log: moved to ${moved}`,
      })
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
        this.#saveDamage(seg, d.start, d.end, 'corrupt')
      seg.frames = this.#checkFrames(seg, scan.frames, undefined)
      frames += seg.frames.length
      if (scan.tornBytes > 0) {
        const tornEnd = scan.validEnd + scan.tornBytes
        if (!isTornWrite(this.#readRange(path, scan.validEnd, tornEnd))) {
          // Not a write cut short: damage. Kept before the cut (or the open fails).
          let quarantined: string
          try {
            quarantined = this.#quarantineRange(seg, scan.validEnd, tornEnd, 'corrupt')
          } catch (cause) {
            throw ioError(`copying damaged bytes of ${name} to quarantine`, cause)
          }
          this.#damage({
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
    this.#gapFloor = watermarkOk ? this.#ackedSeq : (this.#segments[0]?.firstSeq ?? this.#nextSeq)
    // The watermark can be ahead of the data (frames lost to damage) or behind it.
    this.#nextSeq = Math.max(this.#nextSeq, this.#ackedSeq)
    this.#syncedSeq = this.#nextSeq
    this.#dropAcknowledgedSegments()
    this.#keepReserve()
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
      quarantined: this.#quarantined,
    }
  }

  /**
   * Runs bookkeeping that needs a little space; on ENOSPC gives the reserve
   * back and tries once more.
   */
  #withReserve<T>(fn: () => T): T {
    try {
      return fn()
    } catch (err) {
      if (!isNoSpace(err) || !this.#releaseReserve()) throw err
      return fn()
    }
  }

  #releaseReserve(): boolean {
    try {
      this.#fs.unlinkSync(join(this.dir, RESERVE_NAME))
    } catch {
      return false
    }
    this.#reserved = false
    return true
  }

  /** Makes the reserve file if it is not there (best effort: without space it waits for the next try). */
  #keepReserve(): void {
    if (this.#reserved) return
    const fs = this.#fs
    const path = join(this.dir, RESERVE_NAME)
    let fd: number
    try {
      fd = fs.openSync(path, 'wx', FILE_MODE)
    } catch (err) {
      // There already (EEXIST), or not to be made here: do not try again.
      if (!isNoSpace(err)) this.#reserved = true
      return
    }
    try {
      const zeros = new Uint8Array(RESERVE_BYTES)
      let done = 0
      while (done < zeros.byteLength) done += fs.writeSync(fd, zeros, done, zeros.byteLength - done, done)
      fs.fdatasyncSync(fd)
      this.#reserved = true
    } catch {
      try {
        fs.unlinkSync(path)
      } catch {}
    } finally {
      fs.closeSync(fd)
    }
  }

  #damage(damage: WalDamage): void {
    this.#onDamage?.(damage)
  }

  /**
   * The frames of a scan that belong in `seg`: sequence numbers rising from
   * its name and, for a segment followed by another, ending by the next
   * one's start. Others (a copied or renamed file) are misplaced: kept in
   * quarantine, not read as data.
   */
  #checkFrames(seg: Segment, scanned: readonly ScannedFrame[], endSeq: number | undefined): FrameRef[] {
    const kept: FrameRef[] = []
    let expected = seg.firstSeq
    for (const f of scanned) {
      const h = f.header
      if (h.firstSeq < expected || (endSeq !== undefined && h.firstSeq + h.count > endSeq)) {
        this.#saveDamage(seg, f.offset, f.end, 'misplaced', h.firstSeq, h.firstSeq + h.count)
        continue
      }
      kept.push({ header: h, offset: f.offset })
      expected = h.firstSeq + h.count
    }
    return kept
  }

  /**
   * Copies a damaged range of `seg` to quarantine and reports it. When the
   * copy fails (ENOSPC…) the range is remembered and the segment kept until
   * a later try succeeds (see #dropAcknowledgedSegments).
   */
  #saveDamage(
    seg: Segment,
    start: number,
    end: number,
    kind: WalDamageKind,
    fromSeq?: number,
    toSeq?: number,
  ): void {
    const what =
      kind === 'misplaced'
        ? `${seg.name} bytes ${start}–${end}: frames of sequence ${fromSeq}–${toSeq! - 1} do not belong in this segment`
        : `${seg.name} bytes ${start}–${end} (${end - start} B): no valid frame (damaged), its items are lost`
    const seqs = fromSeq === undefined ? {} : { fromSeq, toSeq }
    try {
      const quarantined = this.#quarantineRange(seg, start, end, kind)
      this.#damage({
        kind,
        segment: seg.name,
        start,
        end,
        ...seqs,
        quarantined,
        message: `${what}; copied to ${quarantined}`,
      })
    } catch (cause) {
      seg.unsaved.push({ start, end, kind })
      this.#damage({
        kind,
        segment: seg.name,
        start,
        end,
        ...seqs,
        message: `${what}; not copied to quarantine yet (${(cause as Error).message}): the segment is kept until it is`,
      })
    }
  }

  /** Copies bytes [start, end) of `seg` to quarantine; returns the copy's path. Throws on failure. */
  #quarantineRange(seg: Segment, start: number, end: number, kind: WalDamageKind): string {
    const bytes = this.#readRange(seg.path, start, end)
    const name = quarantineName(seg.name, start, end, kind)
    const path = this.#withReserve(() => writeQuarantine(this.#fs, this.dir, name, bytes))
    this.#quarantined++
    return path
  }

  #readRange(path: string, start: number, end: number): Uint8Array {
    const bytes = new Uint8Array(end - start)
    this.#withFd(path, 'r', (fd) => {
      let done = 0
      while (done < bytes.byteLength) {
        const n = this.#fs.readSync(fd, bytes, done, bytes.byteLength - done, start + done)
        if (n === 0) throw new Error(`${path} ends before byte ${end}`)
        done += n
      }
    })
    return bytes
  }

  /** Damage still waiting for its copy: tried again; false while any copy fails. */
  #saveUnsaved(seg: Segment): boolean {
    while (seg.unsaved.length > 0) {
      const u = seg.unsaved[0]!
      try {
        this.#quarantineRange(seg, u.start, u.end, u.kind)
      } catch {
        return false
      }
      seg.unsaved.shift()
    }
    return true
  }

  /** A gap in sequence numbers met by a reader: reported once, unless below the floor or the watermark. */
  #gap(from: number, to: number, before: Segment | undefined): void {
    const start = Math.max(from, this.#gapFloor, this.#ackedSeq, this.#gapReportedTo)
    if (start >= to) return
    this.#gapReportedTo = to
    this.#gaps++
    this.#gapItems += to - start
    this.#damage({
      kind: 'gap',
      ...(before ? { segment: before.name } : {}),
      fromSeq: start,
      toSeq: to,
      message: `sequence numbers ${start}–${to - 1} (${to - start} items) are in no frame (${
        before ? `before ${before.name}` : 'at the end of the log'
      }): a missing segment or lost frames`,
    })
  }

  /** Copies a frame that cannot be decoded to quarantine (kind `auth`). Throws WalError IO on failure. */
  #quarantineFrame(seg: Segment, ref: FrameRef): void {
    const end = ref.offset + FRAME_HEADER_BYTES + ref.header.length
    let quarantined: string
    try {
      quarantined = this.#quarantineRange(seg, ref.offset, end, 'auth')
    } catch (cause) {
      throw cause instanceof WalError ? cause : ioError(`copying a frame of ${seg.name} to quarantine`, cause)
    }
    const h = ref.header
    this.#damage({
      kind: 'auth',
      segment: seg.name,
      start: ref.offset,
      end,
      fromSeq: h.firstSeq,
      toSeq: h.firstSeq + h.count,
      quarantined,
      message: `${seg.name} offset ${ref.offset}: the frame of sequence ${h.firstSeq}–${
        h.firstSeq + h.count - 1
      } fails authentication with key ${h.keyId} while other frames of that key pass (tampered or damaged); copied to ${quarantined}`,
    })
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
    return this.#gaps
  }

  /** Items in those gaps. */
  get gapItems(): number {
    return this.#gapItems
  }

  /** Pieces of damage copied (or moved) to `quarantine/` so far. */
  get quarantined(): number {
    return this.#quarantined
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
      this.#withReserve(() => this.#createWatermark(value))
      this.#writtenSeq = value
      return
    }
    try {
      const bytes = encodeWatermark(value)
      // (A copy-on-write file system needs a new block even to overwrite: the reserve.)
      this.#withReserve(() => this.#fs.writeSync(fd, bytes, 0, bytes.byteLength, 0))
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
        this.#withReserve(() => this.#fs.writeSync(fd, bytes, 0, bytes.byteLength, 0))
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
    if (this.#segments.length < before) this.#keepReserve()
  }

  #dropSegments(): void {
    let i = 0
    while (i < this.#segments.length) {
      const seg = this.#segments[i]!
      if (this.#fd >= 0 && seg === this.#segments.at(-1)) return
      // A segment ends where the next one starts (or at nextSeq for the last).
      const end = this.#segments[i + 1]?.firstSeq ?? this.#nextSeq
      if (end > this.#ackedSeq) return
      if (!this.#saveUnsaved(seg)) {
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
        gap: (from, to, before) => this.#gap(from, to, before),
        quarantine: (seg, ref) => this.#quarantineFrame(seg, ref),
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
    seg.frames = this.#checkFrames(seg, scan.frames, next?.firstSeq)
    for (const d of scan.damaged) this.#saveDamage(seg, d.start, d.end, 'corrupt')
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

interface LogView {
  readonly segments: readonly Segment[]
  readonly fs: WalFs
  readonly codec: PayloadCodecOptions
  readonly scan: (seg: Segment) => FrameRef[]
  readonly nextSeq: () => number
  /** Sequence numbers [from, to) are in no frame (`before`: the segment after them, if any). */
  readonly gap: (from: number, to: number, before: Segment | undefined) => void
  /** Copies a frame to quarantine; throws WalError IO when it cannot. */
  readonly quarantine: (seg: Segment, ref: FrameRef) => void
}

/**
 * Reads frames in order, one at a time, following the log as it grows
 * (made by `WriteAheadLog.reader`, used on the log's owner thread). `position`
 * is the sequence number the reader has reached: every item below it was
 * returned, skipped, or is not in the log.
 */
export class WalReader {
  readonly #log: LogView
  #position: number
  #segment: Segment | undefined
  #index = 0
  #fd = -1
  #fdSegment: Segment | undefined

  constructor(log: LogView, fromSeq: number) {
    this.#log = log
    this.#position = fromSeq
  }

  get position(): number {
    return this.#position
  }

  /** The next frame wholly below `limitSeq` (default: everything appended), or undefined. */
  next(limitSeq: number = this.#log.nextSeq()): WalFrame | undefined {
    const ref = this.#peek(limitSeq)
    if (!ref) return undefined
    const payload = this.#read(ref)
    const frame: WalFrame = { ...ref.header, payload: decodePayload(payload, ref.header, this.#log.codec) }
    this.#advance(ref)
    return frame
  }

  /**
   * Skips the frame `next` would return (one that cannot be decoded: a
   * tampered frame, a key not supplied). Returns its item count (0: none).
   */
  skip(limitSeq: number = this.#log.nextSeq()): number {
    const ref = this.#peek(limitSeq)
    if (!ref) return 0
    this.#advance(ref)
    return ref.header.count
  }

  /** The header of the frame `next` would return, without reading or decoding it. */
  peekHeader(limitSeq: number = this.#log.nextSeq()): FrameHeader | undefined {
    return this.#peek(limitSeq)?.header
  }

  /**
   * Copies the frame `next` would return to the log's `quarantine/` (kind
   * `auth`: it cannot be decoded while others of its key can), then skips
   * it. Returns its item count (0: none).
   * @throws WalError IO when the copy fails: nothing is skipped then.
   */
  quarantine(limitSeq: number = this.#log.nextSeq()): number {
    const ref = this.#peek(limitSeq)
    if (!ref) return 0
    this.#log.quarantine(this.#segment!, ref)
    this.#advance(ref)
    return ref.header.count
  }

  /**
   * Moves the reader forward to `seq` (frames below it are not returned).
   * Returns how many sequence numbers it skipped.
   */
  skipTo(seq: number): number {
    const from = this.#position
    this.#position = Math.max(this.#position, seq)
    return this.#position - from
  }

  /** Moves to the end of the log: what is there now is not to be read. */
  catchUp(): void {
    const segs = this.#log.segments
    this.#segment = segs.at(-1)
    this.#index = this.#segment?.frames?.length ?? 0
    this.#position = Math.max(this.#position, this.#log.nextSeq())
  }

  /** Whether frames not read yet exist (appended, not necessarily synced). */
  get behind(): boolean {
    return this.#position < this.#log.nextSeq()
  }

  close(): void {
    this.#closeFd()
  }

  /** Index of the reader's segment, re-found if it was deleted. */
  #locate(): number {
    const segs = this.#log.segments
    let i = this.#segment ? segs.indexOf(this.#segment) : -1
    if (i < 0) {
      // Not started, or its segment was deleted: find the first segment that
      // holds anything at or after the position.
      i = 0
      while (i + 1 < segs.length && segs[i + 1]!.firstSeq <= this.#position) i++
      this.#segment = segs[i]
      this.#index = 0
    }
    return i
  }

  #peek(limitSeq: number): FrameRef | undefined {
    const segs = this.#log.segments
    for (let i = this.#locate(); i < segs.length; i++) {
      const seg = segs[i]!
      if (seg !== this.#segment) {
        this.#segment = seg
        this.#index = 0
      }
      const refs = this.#log.scan(seg)
      while (this.#index < refs.length) {
        const ref = refs[this.#index]!
        const end = ref.header.firstSeq + ref.header.count
        if (end <= this.#position) {
          this.#index++
          continue
        }
        if (ref.header.firstSeq > this.#position) {
          // No frame holds the items from the position to this frame: a gap
          // (reported by the log unless below the watermark), passed over.
          this.#log.gap(this.#position, ref.header.firstSeq, seg)
          this.#position = ref.header.firstSeq
        }
        return end <= limitSeq ? ref : undefined
      }
      if (i === segs.length - 1) break
    }
    // Every frame is read and the log says it holds more: those sequence
    // numbers are in no frame (a stray segment named past the data). Without
    // this the reader stays `behind` forever.
    const end = this.#log.nextSeq()
    if (this.#position < end) {
      this.#log.gap(this.#position, end, undefined)
      this.#position = end
    }
    return undefined
  }

  #advance(ref: FrameRef): void {
    this.#index++
    this.#position = Math.max(this.#position, ref.header.firstSeq + ref.header.count)
  }

  #read(ref: FrameRef): Uint8Array {
    const seg = this.#segment!
    const fs = this.#log.fs
    if (this.#fdSegment !== seg) {
      this.#closeFd()
      try {
        this.#fd = fs.openSync(seg.path, 'r')
      } catch (cause) {
        throw ioError(`opening ${seg.path}`, cause)
      }
      this.#fdSegment = seg
    }
    const payload = new Uint8Array(ref.header.length)
    try {
      let done = 0
      while (done < payload.byteLength) {
        const n = fs.readSync(
          this.#fd,
          payload,
          done,
          payload.byteLength - done,
          ref.offset + FRAME_HEADER_BYTES + done,
        )
        if (n === 0) throw new Error('unexpected end of file')
        done += n
      }
    } catch (cause) {
      throw ioError(`reading ${seg.path}`, cause)
    }
    return payload
  }

  #closeFd(): void {
    if (this.#fd >= 0) {
      try {
        this.#log.fs.closeSync(this.#fd)
      } catch {}
      this.#fd = -1
      this.#fdSegment = undefined
    }
  }
}

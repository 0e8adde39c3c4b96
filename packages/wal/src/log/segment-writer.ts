import { join } from 'node:path'
import { WalError } from '../errors.ts'
import { encodeAckRecord, encodeFrame, FRAME_HEADER_BYTES } from '../format/frame.ts'
import { encodePayload, type PayloadCodecOptions } from '../format/payload-codec.ts'
import type { WalFs } from './fs.ts'
import { closeInBackground, ioError, openInBackground, syncInBackground, withFd, writeFully } from './io.ts'
import { FILE_MODE, NEXT_SEGMENT_FILE, segmentName } from './layout.ts'
import type { LogFiles, Segment } from './segment.ts'

/** Closed segments that may wait for the next sync; past this a rotation syncs the oldest itself. */
const MAX_UNSYNCED = 4

/** What the writer asks of the rest of the log when an append meets a full disk. */
export interface WriterHooks {
  /** Every item below this was delivered. */
  readonly ackedSeq: () => number
  /** Deletes the segments that hold only delivered items. */
  readonly dropDelivered: () => void
}

export interface SegmentWriterOptions {
  readonly segmentBytes: number
  readonly codec: PayloadCodecOptions
  /** The sequence number recovery found the next item takes (everything below it is durable). */
  readonly nextSeq: number
  /** The acknowledgement recovery found (file or records): records written from now on only go higher. */
  readonly ackedSeq: number
  readonly hooks: WriterHooks
}

/**
 * The writing end of the log: the descriptor of the segment being appended
 * to, rotation, and group commit. A descriptor's life spans two calls — a
 * rotation closes a segment whose frames the next sync must still
 * fdatasync, and a background sync may still be using a descriptor the
 * owner thread is done with — so the writer keeps them until they are
 * synced (`#unsynced`) and closes none under a running sync
 * (`#deferredClose`). 15 private fields: those lifetimes and the sequence
 * numbers they make durable are one state, changed together.
 *
 * Acknowledgement records (`recordAck`) ride on the same group commit: a
 * 32-byte record appended between frames is durable once the next sync
 * returns (`syncedAckSeq`), so acknowledging costs no fdatasync of its own
 * while batches are being appended. Every new segment starts with a record
 * of the highest acknowledgement written so far, so the last segment —
 * the one recovery scans — holds the highest one.
 */
export class SegmentWriter {
  readonly #fs: WalFs
  readonly #dir: string
  readonly #segmentBytes: number
  readonly #codec: PayloadCodecOptions
  readonly #segments: Segment[]
  readonly #hooks: WriterHooks
  #fd = -1
  #nextSeq: number
  #syncedSeq: number
  /** The background fdatasync running, if any (syncAsync). */
  #syncing: Promise<number> | undefined
  /** Descriptors of closed segments, closed once the background fdatasync returns. */
  readonly #deferredClose: number[] = []
  /** Descriptors of segments closed by a rotation with frames not fdatasync'ed yet (the next sync does). */
  readonly #unsynced: number[] = []
  /** A segment was created since the directory was last fsync'ed (the next sync does). */
  #dirDirty = false
  /** `next-segment`: the next segment, created empty in libuv's thread pool (see prepareNext). */
  readonly #nextPath: string
  /** Its descriptor once created, -1 until then (and once a rotation took it). */
  #nextFd = -1
  /** Its creation is running in the thread pool. */
  #nextOpening = false
  /** close() ran: a creation that ends later closes what it made. */
  #closed = false
  /** The highest acknowledgement record written (or recovered). */
  #recordedAck: number
  /** The highest acknowledgement record a completed sync covered. */
  #syncedAck: number

  /** `files.segments`: a rotation adds one at the end. */
  constructor(files: LogFiles, options: SegmentWriterOptions) {
    this.#fs = files.fs
    this.#dir = files.dir
    this.#segments = files.segments
    this.#segmentBytes = options.segmentBytes
    this.#codec = options.codec
    this.#hooks = options.hooks
    this.#nextSeq = options.nextSeq
    this.#syncedSeq = options.nextSeq
    this.#nextPath = join(files.dir, NEXT_SEGMENT_FILE)
    this.#recordedAck = options.ackedSeq
    this.#syncedAck = options.ackedSeq
  }

  /** The highest acknowledgement written into a segment (durable or not: a process crash keeps it). */
  get recordedAckSeq(): number {
    return this.#recordedAck
  }

  /** The highest acknowledgement written into a segment and fdatasync'ed since. */
  get syncedAckSeq(): number {
    return this.#syncedAck
  }

  /** Sequence number the next appended item gets. */
  get nextSeq(): number {
    return this.#nextSeq
  }

  /** Every item below this is durable (fdatasync'ed). */
  get syncedSeq(): number {
    return this.#syncedSeq
  }

  /** A segment is open for appending. */
  get writing(): boolean {
    return this.#fd >= 0
  }

  /** The background sync running, if any. */
  get running(): Promise<number> | undefined {
    return this.#syncing
  }

  /** Something a sync would make durable or close is left. */
  get needsSync(): boolean {
    return this.#fd >= 0 || this.#unsynced.length > 0 || this.#dirDirty
  }

  /** Whether the segment being written holds something no sync covered yet (frames or records). */
  get #currentDirty(): boolean {
    return this.#syncedSeq < this.#nextSeq || this.#syncedAck < this.#recordedAck
  }

  /**
   * After recovery: keeps appending to the last segment if it was scanned
   * (its end is known good) and has room; otherwise the first append starts
   * a new one.
   */
  resume(): void {
    const tail = this.#segments.at(-1)
    if (tail?.frames && tail.size < this.#segmentBytes) {
      try {
        this.#fd = this.#fs.openSync(tail.path, 'r+', FILE_MODE)
      } catch (cause) {
        throw ioError(`opening ${tail.path}`, cause)
      }
    }
  }

  /**
   * `WriteAheadLog.append` once the log is known to be open and `count`
   * valid: one frame, written at the end of the current segment (a new one
   * past `segmentBytes`). A failed write is truncated away.
   */
  append(data: Uint8Array, count: number): number {
    const firstSeq = this.#nextSeq
    // Compressed and/or encrypted as configured; flags and key id go in the header.
    const { payload, flags, keyId } = encodePayload(data, { firstSeq, count }, this.#codec)
    const frame = encodeFrame(payload, { flags, keyId, firstSeq, count })
    let seg = this.#segments.at(-1)
    let bytes = frame
    if (this.#fd < 0 || !seg || (seg.size > 0 && seg.size + frame.byteLength > this.#segmentBytes)) {
      seg = this.#rotate(firstSeq)
      // A new segment starts with the highest acknowledgement so far (one write with the frame).
      if (this.#recordedAck > 0) {
        bytes = new Uint8Array(FRAME_HEADER_BYTES + frame.byteLength)
        bytes.set(encodeAckRecord(this.#recordedAck))
        bytes.set(frame, FRAME_HEADER_BYTES)
      }
    }
    const refs = seg.frames!
    const at = seg.size
    try {
      writeFully(this.#fs, this.#fd, bytes, at)
    } catch (cause) {
      // Leave no partial frame behind (best effort: recovery would cut it too).
      try {
        this.#fs.ftruncateSync(this.#fd, at)
      } catch {}
      if (
        (cause as NodeJS.ErrnoException).code === 'ENOSPC' &&
        this.#hooks.ackedSeq() >= firstSeq &&
        at > 0
      ) {
        // The disk is full and the segment being written holds only delivered
        // items: close it so it can be deleted now (the next append starts a
        // new one). Otherwise it would hold its space until the next append
        // succeeded, which needs that space.
        this.closeFd()
        this.#hooks.dropDelivered()
      }
      throw ioError('append', cause)
    }
    seg.size += bytes.byteLength
    // Half full: time to have the next one made (a log that never gets this
    // far — a short run, a test — never creates one behind its back).
    if (seg.size * 2 >= this.#segmentBytes) this.prepareNext()
    refs.push({
      header: {
        flags,
        keyId,
        firstSeq,
        count,
        length: payload.byteLength,
      },
      offset: at + bytes.byteLength - frame.byteLength,
    })
    this.#nextSeq = firstSeq + count
    return firstSeq
  }

  /**
   * `WriteAheadLog.recordAck` once the log is known to be open: appends an
   * acknowledgement record to the segment being written (durable after the
   * next sync). false when no segment is open for appending (the caller
   * writes the `ack` file instead). A failed write is truncated away.
   */
  recordAck(seq: number): boolean {
    if (this.#fd < 0) return false
    if (seq <= this.#recordedAck) return true
    const seg = this.#segments.at(-1)!
    const at = seg.size
    try {
      writeFully(this.#fs, this.#fd, encodeAckRecord(seq), at)
    } catch (cause) {
      try {
        this.#fs.ftruncateSync(this.#fd, at)
      } catch {}
      throw ioError('writing an acknowledgement record', cause)
    }
    seg.size += FRAME_HEADER_BYTES
    this.#recordedAck = seq
    return true
  }

  /** `WriteAheadLog.seal` once the log is known to be open. */
  seal(): void {
    if (this.#fd < 0) return
    this.sync()
    this.closeFd()
  }

  /**
   * Closes the segment being written. While a background fdatasync runs on
   * it the descriptor stays open (closing it could let the number be reused
   * under that sync) and is closed when the sync returns.
   */
  closeFd(): void {
    this.#release(this.#fd)
    this.#fd = -1
  }

  /**
   * Creates the next segment in libuv's thread pool, empty, as
   * `next-segment`, so that a rotation only renames it (creating a file on
   * the owner thread waits for the file system's journal: one rotation
   * stalled 124 ms on ext4 here while a segment's fdatasync ran). Called
   * once the segment being written is half full. Without the layer's callback
   * `open`, or when the creation fails (a full disk…), the rotation creates
   * the segment itself, as before. A crash leaves at most an empty
   * `next-segment`, which is no segment: recovery and the CLI list segments
   * by name only, and the next creation truncates it.
   */
  prepareNext(): void {
    if (this.#closed || this.#nextFd >= 0 || this.#nextOpening || !this.#fs.open) return
    this.#nextOpening = true
    // 'w+': a leftover from a crash is empty anyway (frames only go to a renamed one).
    this.#fs.open(this.#nextPath, 'w+', FILE_MODE, (err, fd) => {
      this.#nextOpening = false
      if (err) return // (the rotation creates the segment itself; the one after tries again)
      if (this.#closed) {
        // close() ran meanwhile: leave nothing behind (best effort).
        try {
          this.#fs.closeSync(fd)
          this.#fs.unlinkSync(this.#nextPath)
        } catch {}
        return
      }
      this.#nextFd = fd
    })
  }

  /**
   * The descriptor of a new segment file at `path`: the pre-created one
   * renamed there when it is ready, else created here. Never over an
   * existing segment: a name the log already has (the last segment, empty
   * and sealed) is created with 'wx', which fails as it always did.
   */
  #createSegment(name: string, path: string): number {
    const ready = this.#nextFd
    if (ready >= 0 && this.#segments.at(-1)?.name !== name) {
      this.#nextFd = -1
      try {
        this.#fs.renameSync(this.#nextPath, path)
        return ready
      } catch {
        // (Gone or not renamable: create the segment here, as without one.)
        try {
          this.#fs.closeSync(ready)
        } catch {}
      }
    }
    try {
      return this.#fs.openSync(path, 'wx+', FILE_MODE)
    } catch (cause) {
      throw ioError(`creating ${path}`, cause)
    }
  }

  /**
   * At close: the pre-created segment's descriptor is closed and the file
   * removed (best effort: one left behind is empty and not a segment).
   */
  close(): void {
    this.#closed = true
    if (this.#nextFd < 0) return
    try {
      this.#fs.closeSync(this.#nextFd)
      this.#fs.unlinkSync(this.#nextPath)
    } catch {}
    this.#nextFd = -1
  }

  /**
   * Closes the current segment and starts a new one. Nothing is synced here
   * (an fdatasync of the old segment and an fsync of the directory stall
   * every append behind them): the old segment's descriptor waits in
   * #unsynced and the directory is marked dirty; the next sync makes both
   * durable before it claims anything (`syncedSeq`) — the rename of a
   * pre-created segment to its name included.
   */
  #rotate(firstSeq: number): Segment {
    if (this.#fd >= 0) {
      if (this.#currentDirty || this.#syncing) this.#unsynced.push(this.#fd)
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
    const path = join(this.#dir, name)
    this.#fd = this.#createSegment(name, path)
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
   * `WriteAheadLog.sync`: one fdatasync makes every frame appended since the
   * last sync durable — first those of segments closed since (each
   * fdatasync'ed, then closed), then the directory entries of segments
   * created since, then the current segment.
   */
  sync(): number {
    const target = this.#nextSeq
    const ack = this.#recordedAck
    const current = this.#currentDirty
    try {
      while (this.#unsynced.length > 0) {
        const fd = this.#unsynced[0]!
        this.#fs.fdatasyncSync(fd)
        this.#unsynced.shift()
        this.#release(fd)
      }
      if (this.#dirDirty) {
        withFd(this.#fs, this.#dir, 'r', (fd) => this.#fs.fsyncSync(fd))
        this.#dirDirty = false
      }
      if (current && this.#fd >= 0) this.#fs.fdatasyncSync(this.#fd)
    } catch (cause) {
      throw cause instanceof WalError ? cause : ioError('fdatasync', cause)
    }
    this.#syncedSeq = Math.max(this.#syncedSeq, target)
    this.#syncedAck = Math.max(this.#syncedAck, ack)
    return this.#syncedSeq
  }

  /**
   * `WriteAheadLog.syncAsync` once no background sync runs (`running`: the
   * caller waits for it, since this one's steps must follow its): the
   * same steps in libuv's thread pool, covering every frame appended before
   * the call. `syncedSeq` moves only when all of them succeeded; after a
   * failure the closed segments stay in #unsynced and the directory dirty,
   * so the next sync tries again.
   */
  syncAsync(): Promise<number> {
    const target = this.#nextSeq
    const ack = this.#recordedAck
    const closed = this.#unsynced.slice()
    const dir = this.#dirDirty
    const fd = this.#currentDirty ? this.#fd : -1
    if (closed.length === 0 && !dir && fd < 0) {
      this.#syncedSeq = Math.max(this.#syncedSeq, target)
      this.#syncedAck = Math.max(this.#syncedAck, ack)
      return Promise.resolve(this.#syncedSeq)
    }
    this.#dirDirty = false
    const syncing = (async () => {
      try {
        for (const c of closed) await syncInBackground(this.#fs, c, 'fdatasync')
        if (dir) {
          // Opened and closed in the thread pool too: the sync makes no file-system call on this thread.
          const dirFd = await openInBackground(this.#fs, this.#dir, 'r')
          try {
            await syncInBackground(this.#fs, dirFd, 'fsync')
          } finally {
            await closeInBackground(this.#fs, dirFd)
          }
        }
        if (fd >= 0) await syncInBackground(this.#fs, fd, 'fdatasync')
      } catch (err) {
        if (dir) this.#dirDirty = true
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
      this.#syncedAck = Math.max(this.#syncedAck, ack)
      return this.#syncedSeq
    })()
    this.#syncing = syncing
    return syncing
  }
}

import { join } from 'node:path'
import { WalError, WalErrorCodes } from '../errors.ts'
import { encodeFrame, FRAME_HEADER_BYTES, type FrameHeader } from '../format/frame.ts'
import {
  checkCodecOptions,
  decodePayload,
  encodePayload,
  type PayloadCodecOptions,
} from '../format/payload-codec.ts'
import { scanSegment } from '../format/segment-scan.ts'
import { decodeWatermark, encodeWatermark } from '../format/watermark.ts'
import { nodeFs, type WalFs } from './fs.ts'

export interface WalOptions extends PayloadCodecOptions {
  /** A segment is closed and a new one started past this size. Default 64 MiB. */
  readonly segmentBytes?: number
  /** File-system layer (tests inject faults through it). Default node:fs. */
  readonly fs?: WalFs
}

/** What opening found on disk. */
export interface RecoveryReport {
  readonly segments: number
  readonly frames: number
  /** Items in frames not yet acknowledged. */
  readonly pendingItems: number
  /** Damaged regions skipped (their items are lost; never parsed as data). */
  readonly corruptRegions: number
  /** Bytes of torn tail truncated (a write the crash cut short). */
  readonly truncatedBytes: number
  /** The watermark file was missing or damaged: everything is re-delivered. */
  readonly watermarkReset: boolean
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
  readonly frames: FrameRef[]
  size: number
}

const SEGMENT_SUFFIX = '.wal'
const FILE_MODE = 0o600
const DIR_MODE = 0o700

function segmentName(firstSeq: number): string {
  return `${String(firstSeq).padStart(20, '0')}${SEGMENT_SUFFIX}`
}

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
  #fd = -1
  #nextSeq = 0
  #syncedSeq = 0
  #ackedSeq = 0
  #closed = false
  readonly recovery: RecoveryReport

  private constructor(dir: string, options: WalOptions) {
    this.dir = dir
    this.#fs = options.fs ?? nodeFs
    this.#segmentBytes = options.segmentBytes ?? 64 * 1024 * 1024
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

  #recover(): RecoveryReport {
    const fs = this.#fs
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: DIR_MODE })
    } catch (cause) {
      throw ioError(`mkdir ${this.dir}`, cause)
    }
    let watermarkReset = false
    try {
      const acked = decodeWatermark(fs.readFileSync(join(this.dir, 'ack')))
      if (acked === undefined) watermarkReset = true
      else this.#ackedSeq = acked
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('reading the watermark', cause)
    }
    const names = fs
      .readdirSync(this.dir)
      .filter((n) => n.endsWith(SEGMENT_SUFFIX))
      .sort()
    let corruptRegions = 0
    let truncatedBytes = 0
    let frames = 0
    for (const [i, name] of names.entries()) {
      const path = join(this.dir, name)
      const scan = scanSegment(fs.readFileSync(path))
      corruptRegions += scan.corruptRegions
      frames += scan.frames.length
      const last = i === names.length - 1
      if (last && scan.tornBytes > 0) {
        // Cut the torn tail so appends continue after the last valid frame.
        this.#withFd(path, 'r+', (fd) => {
          fs.ftruncateSync(fd, scan.validEnd)
          fs.fdatasyncSync(fd)
        })
        truncatedBytes += scan.tornBytes
      } else if (scan.tornBytes > 0) {
        corruptRegions++
      }
      this.#segments.push({
        name,
        path,
        frames: scan.frames.map((f) => ({ header: f.header, offset: f.offset })),
        size: last ? scan.validEnd : scan.validEnd + scan.tornBytes,
      })
      for (const f of scan.frames) {
        this.#nextSeq = Math.max(this.#nextSeq, f.header.firstSeq + f.header.count)
      }
    }
    // The watermark can be ahead of the data (frames lost to damage) or behind it.
    this.#nextSeq = Math.max(this.#nextSeq, this.#ackedSeq)
    this.#syncedSeq = this.#nextSeq
    this.#dropAcknowledgedSegments()
    const pendingItems = this.#pendingItems()
    // Keep appending to the last segment if it has room, else start a new one.
    const tail = this.#segments.at(-1)
    if (tail && tail.size < this.#segmentBytes) {
      try {
        this.#fd = fs.openSync(tail.path, 'r+', FILE_MODE)
      } catch (cause) {
        throw ioError(`opening ${tail.path}`, cause)
      }
    }
    return {
      segments: this.#segments.length,
      frames,
      pendingItems,
      corruptRegions,
      truncatedBytes,
      watermarkReset,
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

  /** Items in frames not acknowledged yet. */
  get pendingItems(): number {
    return this.#pendingItems()
  }

  #pendingItems(): number {
    let n = 0
    for (const s of this.#segments) {
      for (const f of s.frames) {
        const end = f.header.firstSeq + f.header.count
        if (end > this.#ackedSeq) n += end - Math.max(f.header.firstSeq, this.#ackedSeq)
      }
    }
    return n
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
      throw ioError('append', cause)
    }
    seg.size += frame.byteLength
    seg.frames.push({
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

  /** Closes the current segment (made durable first) and starts a new one. */
  #rotate(firstSeq: number): Segment {
    if (this.#fd >= 0) {
      this.sync()
      this.#fs.closeSync(this.#fd)
      this.#fd = -1
    }
    const name = segmentName(firstSeq)
    const path = join(this.dir, name)
    try {
      this.#fd = this.#fs.openSync(path, 'wx+', FILE_MODE)
    } catch (cause) {
      throw ioError(`creating ${path}`, cause)
    }
    this.#syncDir()
    const seg: Segment = { name, path, frames: [], size: 0 }
    this.#segments.push(seg)
    return seg
  }

  /** Makes a new directory entry (segment, renamed watermark) durable. */
  #syncDir(): void {
    this.#withFd(this.dir, 'r', (fd) => this.#fs.fsyncSync(fd))
  }

  /**
   * Group commit: one fdatasync makes every frame appended since the last
   * sync durable. Returns the synced watermark (every item below it is durable).
   */
  sync(): number {
    this.#checkOpen()
    if (this.#syncedSeq === this.#nextSeq || this.#fd < 0) return (this.#syncedSeq = this.#nextSeq)
    try {
      this.#fs.fdatasyncSync(this.#fd)
    } catch (cause) {
      throw ioError('fdatasync', cause)
    }
    this.#syncedSeq = this.#nextSeq
    return this.#syncedSeq
  }

  /**
   * Records that every item below `seq` was delivered, and deletes segments
   * that hold nothing else. Watermarks only move forward.
   */
  ack(seq: number): void {
    this.#checkOpen()
    if (seq <= this.#ackedSeq) return
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
    this.#ackedSeq = seq
    this.#dropAcknowledgedSegments()
  }

  /** Deletes every segment, but the one being appended to, whose items are all acknowledged. */
  #dropAcknowledgedSegments(): void {
    while (this.#segments.length > 0) {
      const seg = this.#segments[0]!
      if (this.#fd >= 0 && seg === this.#segments.at(-1)) return
      const lastEnd = seg.frames.reduce((m, f) => Math.max(m, f.header.firstSeq + f.header.count), 0)
      if (lastEnd > this.#ackedSeq) return
      try {
        this.#fs.unlinkSync(seg.path)
      } catch (cause) {
        throw ioError(`deleting ${seg.path}`, cause)
      }
      this.#segments.shift()
    }
  }

  /**
   * Reads back, in order, every frame holding an item at or above `fromSeq`
   * (default: the watermark), decompressed and decrypted.
   * @throws WalError DECRYPT (wrong key, tampered frame) or KEY_MISSING.
   */
  *frames(fromSeq: number = this.#ackedSeq): Generator<WalFrame> {
    for (const seg of [...this.#segments]) {
      const wanted = seg.frames.filter((f) => f.header.firstSeq + f.header.count > fromSeq)
      if (wanted.length === 0) continue
      yield* this.#withFd(seg.path, 'r', (fd) =>
        wanted.map((f) => {
          const payload = new Uint8Array(f.header.length)
          this.#fs.readSync(fd, payload, 0, payload.byteLength, f.offset + FRAME_HEADER_BYTES)
          return { ...f.header, payload: decodePayload(payload, f.header, this.#codec) }
        }),
      )
    }
  }

  /** Syncs and closes. Idempotent. */
  close(): void {
    if (this.#closed) return
    if (this.#fd >= 0) {
      this.sync()
      this.#fs.closeSync(this.#fd)
      this.#fd = -1
    }
    this.#closed = true
  }
}

import { FRAME_HEADER_BYTES, type FrameHeader } from '../format/frame.ts'
import { decodePayload, type PayloadCodecOptions } from '../format/payload-codec.ts'
import type { DamageKeeper } from './damage-keeper.ts'
import type { WalFs } from './fs.ts'
import { ioError } from './io.ts'
import { type FrameRef, type Segment, scanSegmentFile } from './segment.ts'

/** A frame read back: `count` items from `firstSeq`, the payload as written. */
export interface WalFrame extends FrameHeader {
  readonly payload: Uint8Array
}

/** What a reader sees of its log (the log's own state, live: it follows appends and deletions). */
export interface LogView {
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

/** The view of a log its readers share (made once by the log). */
export function logView(
  fs: WalFs,
  codec: PayloadCodecOptions,
  segments: Segment[],
  keeper: DamageKeeper,
  nextSeq: () => number,
): LogView {
  return {
    segments,
    fs,
    codec,
    scan: (seg) => scanDeferred(fs, segments, keeper, seg),
    nextSeq,
    gap: (from, to, before) => keeper.gap(from, to, before),
    quarantine: (seg, ref) => keeper.quarantineFrame(seg, ref),
  }
}

/**
 * Reads and checks a segment older than the last one the first time a reader
 * reaches it (open scans only the last one): its damage is counted, copied
 * to quarantine and reported; frames that do not belong in it are set aside.
 */
export function scanDeferred(
  fs: WalFs,
  segments: readonly Segment[],
  keeper: DamageKeeper,
  seg: Segment,
): FrameRef[] {
  if (seg.frames) return seg.frames
  const scan = scanSegmentFile(fs, seg.path)
  // A segment that was followed by another was complete: a torn end is damage.
  keeper.corruptRegions += scan.corruptRegions + (scan.tornBytes > 0 ? 1 : 0)
  const next = segments[segments.indexOf(seg) + 1]
  seg.frames = keeper.checkFrames(seg, scan.frames, next?.firstSeq)
  seg.ackedSeq = scan.ackedSeq
  for (const d of scan.damaged) keeper.save(seg, d.start, d.end, 'corrupt')
  return seg.frames
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

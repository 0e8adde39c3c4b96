import { WalError } from '../errors.ts'
import { FRAME_HEADER_BYTES } from '../format/frame.ts'
import type { ScannedFrame } from '../format/segment-scan.ts'
import type { WalFs } from './fs.ts'
import { ioError, withFd } from './io.ts'
import {
  moveToQuarantine,
  quarantineName,
  type WalDamage,
  type WalDamageKind,
  writeQuarantine,
} from './quarantine.ts'
import type { Reserve } from './reserve.ts'
import type { FrameRef, Segment } from './segment.ts'

/**
 * The log's handling of damage (see quarantine.ts for the kinds): copies
 * what cannot be read to `quarantine/` before its segment can be deleted,
 * remembers what could not be copied yet, reports each piece once
 * (`onDamage`) and counts it.
 */
export class DamageKeeper {
  readonly #fs: WalFs
  readonly #dir: string
  readonly #reserve: Reserve
  readonly #onDamage: ((damage: WalDamage) => void) | undefined
  /** The log's watermark (gaps below it are not damage: those items were delivered). */
  readonly #ackedSeq: () => number
  /**
   * No gap is reported below this: the watermark read at open, or, when it
   * was missing or damaged, the first segment's start (what came before was
   * delivered and deleted, or cannot be known).
   */
  floor = 0
  /** Gaps are reported once: every one below this was. */
  #gapReportedTo = 0
  /** Damaged regions found: in the last segment at open, and by readers in older ones. */
  corruptRegions = 0
  gaps = 0
  gapItems = 0
  /** Pieces of damage copied or moved to quarantine. */
  quarantined = 0

  constructor(
    fs: WalFs,
    dir: string,
    reserve: Reserve,
    ackedSeq: () => number,
    onDamage: ((damage: WalDamage) => void) | undefined,
  ) {
    this.#fs = fs
    this.#dir = dir
    this.#reserve = reserve
    this.#ackedSeq = ackedSeq
    this.#onDamage = onDamage
  }

  report(damage: WalDamage): void {
    this.#onDamage?.(damage)
  }

  /**
   * The frames of a scan that belong in `seg`: sequence numbers rising from
   * its name and, for a segment followed by another, ending by the next
   * one's start. Others (a copied or renamed file) are misplaced: kept in
   * quarantine, not read as data.
   */
  checkFrames(seg: Segment, scanned: readonly ScannedFrame[], endSeq: number | undefined): FrameRef[] {
    const kept: FrameRef[] = []
    let expected = seg.firstSeq
    for (const f of scanned) {
      const h = f.header
      if (h.firstSeq < expected || (endSeq !== undefined && h.firstSeq + h.count > endSeq)) {
        this.save(seg, f.offset, f.end, 'misplaced', h.firstSeq, h.firstSeq + h.count)
        continue
      }
      kept.push({ header: h, offset: f.offset })
      expected = h.firstSeq + h.count
    }
    return kept
  }

  /**
   * Copies a damaged range of `seg` to quarantine and reports it. When the
   * copy fails (ENOSPC…) the range is remembered in the segment, which is
   * not deleted until a later try succeeds (`saveUnsaved`).
   */
  save(
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
    const where = { kind, segment: seg.name, start, end, ...seqs }
    try {
      const quarantined = this.copy(seg, start, end, kind)
      this.report({ ...where, quarantined, message: `${what}; copied to ${quarantined}` })
    } catch (cause) {
      seg.unsaved.push({ start, end, kind })
      this.report({
        ...where,
        message: `${what}; not copied to quarantine yet (${(cause as Error).message}): the segment is kept until it is`,
      })
    }
  }

  /** Damage of `seg` still waiting for its copy: tried again; false while any copy fails. */
  saveUnsaved(seg: Segment): boolean {
    while (seg.unsaved.length > 0) {
      const u = seg.unsaved[0]!
      try {
        this.copy(seg, u.start, u.end, u.kind)
      } catch {
        return false
      }
      seg.unsaved.shift()
    }
    return true
  }

  /** Copies bytes [start, end) of `seg` to quarantine; returns the copy's path. Throws on failure. */
  copy(seg: Segment, start: number, end: number, kind: WalDamageKind): string {
    const bytes = this.readRange(seg.path, start, end)
    const name = quarantineName(seg.name, start, end, kind)
    const path = this.#reserve.run(() => writeQuarantine(this.#fs, this.#dir, name, bytes))
    this.quarantined++
    return path
  }

  readRange(path: string, start: number, end: number): Uint8Array {
    const bytes = new Uint8Array(end - start)
    withFd(this.#fs, path, 'r', (fd) => {
      try {
        let done = 0
        while (done < bytes.byteLength) {
          const n = this.#fs.readSync(fd, bytes, done, bytes.byteLength - done, start + done)
          if (n === 0) throw new Error(`${path} ends before byte ${end}`)
          done += n
        }
      } catch (cause) {
        throw ioError(`reading ${path}`, cause)
      }
    })
    return bytes
  }

  /** A file named like a segment that cannot be one: moved whole to quarantine (throws WalError IO). */
  moveStray(name: string): void {
    let moved: string
    try {
      moved = moveToQuarantine(this.#fs, this.#dir, name)
    } catch (cause) {
      throw ioError(`moving the stray file ${name} to quarantine`, cause)
    }
    this.quarantined++
    this.report({
      kind: 'stray',
      segment: name,
      quarantined: moved,
      message: `${name} is named past 2^53, so it cannot be a segment of this log: moved to ${moved}`,
    })
  }

  /** A gap in sequence numbers met by a reader: reported once, unless below the floor or the watermark. */
  gap(from: number, to: number, before: Segment | undefined): void {
    const start = Math.max(from, this.floor, this.#ackedSeq(), this.#gapReportedTo)
    if (start >= to) return
    this.#gapReportedTo = to
    this.gaps++
    this.gapItems += to - start
    this.report({
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
  quarantineFrame(seg: Segment, ref: FrameRef): void {
    const end = ref.offset + FRAME_HEADER_BYTES + ref.header.length
    let quarantined: string
    try {
      quarantined = this.copy(seg, ref.offset, end, 'auth')
    } catch (cause) {
      throw cause instanceof WalError ? cause : ioError(`copying a frame of ${seg.name} to quarantine`, cause)
    }
    const h = ref.header
    this.report({
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
}

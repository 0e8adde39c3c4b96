import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { ScannedFrame, SegmentScan } from '../format/segment-scan.ts'
import { scanSegment } from '../format/segment-scan.ts'
import { QUARANTINE_DIR, SEGMENT_SUFFIX, segmentFirstSeq } from '../log/layout.ts'
import {
  effectiveAck,
  readWatermark,
  recordedAck,
  usableSegmentNames,
  type WatermarkRead,
} from './log-files.ts'

/**
 * What the CLI finds wrong with a log beyond CRCs, by the same rules the log
 * applies when it reads (log/reader.ts, log/damage-keeper.ts): sequence numbers must run
 * on from the watermark without a hole, each frame must belong in its
 * segment, and what the log moved aside sits in `quarantine/`.
 */

/** Sequence numbers [fromSeq, toSeq) that no frame holds: items lost. */
export interface Gap {
  readonly fromSeq: number
  readonly toSeq: number
  /** The segment after the gap (undefined: at the end of the log). */
  readonly before: string | undefined
}

/** Valid frames in a segment their sequence numbers do not belong in (a copied or renamed file). */
export interface Misplaced {
  readonly segment: string
  readonly start: number
  readonly end: number
  readonly fromSeq: number
  readonly toSeq: number
}

/**
 * Walks the frames of every segment in order (fed one segment at a time, so
 * `dump` can check as it prints) and finds gaps and misplaced frames.
 */
export class SequenceCheck {
  readonly gaps: Gap[] = []
  readonly misplaced: Misplaced[] = []
  /** No gap is reported below this (the watermark; without one, the first segment's start). */
  #floor: number | undefined
  /** Every item below this is in a frame seen so far (or below the floor). */
  #cursor: number | undefined
  #lastStart = 0

  constructor(watermark: WatermarkRead) {
    this.#floor = watermark.state === 'ok' ? watermark.ackedSeq : undefined
  }

  /** The frames of segment `name` (followed by `next`, if any) that belong in it. */
  segment(name: string, next: string | undefined, frames: readonly ScannedFrame[]): ScannedFrame[] {
    const start = segmentFirstSeq(name)
    const limit = next === undefined ? Number.POSITIVE_INFINITY : segmentFirstSeq(next)
    this.#floor ??= start
    this.#cursor ??= this.#floor
    this.#lastStart = start
    const kept: ScannedFrame[] = []
    let expected = start
    for (const f of frames) {
      const h = f.header
      const end = h.firstSeq + h.count
      if (h.firstSeq < expected || end > limit) {
        this.misplaced.push({ segment: name, start: f.offset, end: f.end, fromSeq: h.firstSeq, toSeq: end })
        continue
      }
      expected = end
      if (h.firstSeq > this.#cursor) this.#gap(this.#cursor, h.firstSeq, name)
      this.#cursor = Math.max(this.#cursor, end)
      kept.push(f)
    }
    return kept
  }

  /** After the last segment: a last segment named past its data leaves a gap at the end. */
  finish(): void {
    if (this.#cursor !== undefined && this.#cursor < this.#lastStart) {
      this.#gap(this.#cursor, this.#lastStart, undefined)
    }
  }

  #gap(from: number, to: number, before: string | undefined): void {
    const start = Math.max(from, this.#floor ?? 0)
    if (start < to) this.gaps.push({ fromSeq: start, toSeq: to, before })
  }
}

export interface SegmentReport {
  readonly name: string
  readonly bytes: number
  readonly frames: number
  readonly items: number
  readonly firstSeq: number | undefined
  readonly endSeq: number | undefined
  readonly damaged: ReadonlyArray<{ readonly start: number; readonly end: number }>
}

export interface QuarantineFile {
  readonly name: string
  readonly bytes: number
  /** From the name: corrupt, auth, misplaced, or stray (a whole file moved aside). */
  readonly kind: string
}

export interface LogAnalysis {
  /** The `ack` file. */
  readonly watermark: WatermarkRead
  /** The highest acknowledgement record recovery would take from the segments (undefined: none). */
  readonly recordAckedSeq: number | undefined
  /** Where re-delivery would start: the file's watermark or the record's, the higher. */
  readonly ackedSeq: number
  readonly segments: SegmentReport[]
  /** Files named like segments whose number is past 2^53 (moved to quarantine at the next open). */
  readonly stray: string[]
  readonly gaps: Gap[]
  readonly misplaced: Misplaced[]
  readonly quarantine: QuarantineFile[]
}

/** Scans every segment (CRCs checked) without keeping its bytes, and checks the sequence. */
export function analyzeLog(dir: string): LogAnalysis {
  const watermark = readWatermark(dir)
  const check = new SequenceCheck(watermark)
  const { names, stray } = usableSegmentNames(dir)
  const scans: SegmentScan[] = []
  const segments = names.map((name, i): SegmentReport => {
    const bytes = readFileSync(join(dir, name))
    const scan = scanSegment(bytes)
    scans.push(scan)
    const frames = check.segment(name, names[i + 1], scan.frames)
    const first = frames[0]?.header
    const last = frames.at(-1)?.header
    return {
      name,
      bytes: bytes.byteLength,
      frames: frames.length,
      items: frames.reduce((s, f) => s + f.header.count, 0),
      firstSeq: first?.firstSeq,
      endSeq: last ? last.firstSeq + last.count : undefined,
      damaged: scan.damaged,
    }
  })
  check.finish()
  const recordAckedSeq = recordedAck(scans.length, (i) => scans[i]!)
  return {
    watermark,
    recordAckedSeq,
    ackedSeq: effectiveAck(watermark, recordAckedSeq),
    segments,
    stray,
    gaps: check.gaps,
    misplaced: check.misplaced,
    quarantine: quarantineFiles(dir),
  }
}

/** What `quarantine/` holds, by name (`<segment>@<start>-<end>.<kind>`, or a stray segment file). */
export function quarantineFiles(dir: string): QuarantineFile[] {
  let names: string[]
  try {
    names = readdirSync(join(dir, QUARANTINE_DIR)).sort()
  } catch {
    return []
  }
  return names.map((name) => ({
    name,
    bytes: statSync(join(dir, QUARANTINE_DIR, name)).size,
    kind: name.endsWith(SEGMENT_SUFFIX) ? 'stray' : (name.split('.').pop() ?? 'unknown'),
  }))
}

export function formatGap(g: Gap): string {
  const where = g.before === undefined ? 'at the end of the log' : `before ${g.before}`
  return `items ${g.fromSeq}–${g.toSeq - 1} (${g.toSeq - g.fromSeq}) are in no frame, ${where}: a missing segment or lost frames`
}

export function formatMisplaced(m: Misplaced): string {
  return `${m.segment} bytes ${m.start}–${m.end}: frames of items ${m.fromSeq}–${m.toSeq - 1} do not belong in this segment`
}

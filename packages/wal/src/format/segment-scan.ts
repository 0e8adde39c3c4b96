import { checkFrame, type FrameHeader } from './frame.ts'

/** A valid frame found in a segment. */
export interface ScannedFrame {
  readonly header: FrameHeader
  /** Byte offset of the frame (its header) in the segment. */
  readonly offset: number
  /** Byte offset just past its payload. */
  readonly end: number
}

export interface SegmentScan {
  readonly frames: ScannedFrame[]
  /** Damaged regions skipped between valid frames (bit flips, zeroed blocks). */
  readonly corruptRegions: number
  /** Byte ranges [start, end) that hold no valid frame: skipped regions, then the torn tail if any. */
  readonly damaged: ReadonlyArray<{ readonly start: number; readonly end: number }>
  /** Bytes after the last valid frame that hold no valid frame (a torn tail). */
  readonly tornBytes: number
  /** Where valid data ends: a writer appending to this segment starts here. */
  readonly validEnd: number
}

const MAGIC_BYTES = Buffer.from([0x56, 0x51, 0x57, 0x46]) // 'VQWF'

/**
 * Walks a segment frame by frame. A frame that does not check out is never
 * parsed: the scan looks for the next offset where a whole valid frame starts
 * (magic, header CRC, payload CRC) and counts the skipped region; if none
 * follows, the rest is a torn tail.
 */
export function scanSegment(bytes: Uint8Array): SegmentScan {
  const frames: ScannedFrame[] = []
  const damaged: Array<{ start: number; end: number }> = []
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let corruptRegions = 0
  let off = 0
  while (off < bytes.byteLength) {
    const check = checkFrame(bytes, off)
    if (check.ok) {
      frames.push({ header: check.header, offset: off, end: check.end })
      off = check.end
      continue
    }
    const next = findNextFrame(buf, off + 1)
    if (next < 0) break
    corruptRegions++
    damaged.push({ start: off, end: next })
    off = next
  }
  if (off < bytes.byteLength) damaged.push({ start: off, end: bytes.byteLength })
  return { frames, corruptRegions, damaged, tornBytes: bytes.byteLength - off, validEnd: off }
}

function findNextFrame(buf: Buffer, from: number): number {
  for (let at = buf.indexOf(MAGIC_BYTES, from); at >= 0; at = buf.indexOf(MAGIC_BYTES, at + 1)) {
    if (checkFrame(buf, at).ok) return at
  }
  return -1
}

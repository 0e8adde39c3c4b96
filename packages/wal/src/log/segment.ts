import { crc32c } from '../format/crc.ts'
import { checkFrameHeader, FRAME_HEADER_BYTES, type FrameHeader, payloadCrcOf } from '../format/frame.ts'
import { AckTally, type SegmentScan, scanSegment, scanSegmentChunks } from '../format/segment-scan.ts'
import type { WalFs } from './fs.ts'
import { ioError } from './io.ts'
import { FILE_MODE } from './layout.ts'
import type { WalDamageKind } from './quarantine.ts'

/** Where a frame is: its header (checked) and its offset in the segment. */
export interface FrameRef {
  readonly header: FrameHeader
  readonly offset: number
}

/**
 * One segment file as the log knows it. The log's segments are one array
 * (`LogFiles`), oldest first, shared by the parts that change it — recovery
 * builds it, the writer adds a segment at each rotation, retention deletes
 * from the front — and by readers.
 */
export interface Segment {
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
  /**
   * The highest acknowledgement record found in it, once scanned (records
   * are not frames: readers never see them); undefined: none, or not scanned.
   */
  ackedSeq?: number | undefined
  size: number
  /**
   * Damaged byte ranges not copied to quarantine yet (the copy failed:
   * ENOSPC…). The segment is not deleted until they are.
   */
  readonly unsaved: Array<{ start: number; end: number; kind: WalDamageKind }>
}

/** What the parts of one log share: its file system, its directory, its segments. */
export interface LogFiles {
  readonly fs: WalFs
  readonly dir: string
  readonly segments: Segment[]
}

/**
 * Checks every frame of a segment file: a chunk at a time while it is
 * undamaged, the whole file with resynchronisation past damage otherwise.
 */
export function scanSegmentFile(fs: WalFs, path: string): SegmentScan {
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

/**
 * A last segment at least this large is walked (walkSegmentFile) rather
 * than scanned when the log opens after a crash: scanning a full 64 MiB
 * segment was most of a restart's start-up (bench `start_with_backlog_ms`),
 * a walk reads ~32 bytes per frame. Smaller ones are scanned as before.
 */
export const WALK_MIN_BYTES: number = 4 * 1024 * 1024

/** What walking a segment's headers found. */
export interface SegmentWalk {
  /** Where its last whole frame ends. */
  readonly validEnd: number
  /** Bytes after it: a write the crash cut short (a header or a payload running past the end). */
  readonly tornBytes: number
  /** One past the last item of its last whole frame (its firstSeq when it holds none). */
  readonly nextSeq: number
  /** The highest acknowledgement record in it (undefined: none). */
  readonly ackedSeq: number | undefined
}

/**
 * Follows a segment's frame headers (each checked by its own CRC) from the
 * first to the end of the file, reading only the headers, and checks the
 * payload of the last whole frame, the one a crash may have left half
 * written. The payloads before it are checked by a reader when it reaches
 * them, as in older segments. Returns undefined — scan the whole segment
 * instead — when a header does not check out (damage, or blocks a power cut
 * left unwritten) or the last payload does not match its CRC: only a clean
 * walk, or one ending in a frame cut short, is trusted.
 */
export function walkSegmentFile(fs: WalFs, path: string, firstSeq: number): SegmentWalk | undefined {
  try {
    const fd = fs.openSync(path, 'r', FILE_MODE)
    try {
      const size = fs.fstatSizeSync(fd)
      // Headers are read through a small window: small frames share one
      // read; past a frame larger than the window, only a header's worth is
      // read at the next one (frames that large are mostly followed by more
      // of them: a full window per header copied 16 MiB for a 64 MiB segment
      // of 64 KiB frames, note `wal.walk_read` in packages/bench/README.md).
      const window = new Uint8Array(WALK_WINDOW_BYTES)
      let windowStart = 0
      let windowLen = 0
      let off = 0
      let last: { offset: number; header: FrameHeader } | undefined
      let nextSeq = firstSeq
      const acks = new AckTally()
      while (size - off >= FRAME_HEADER_BYTES) {
        if (off < windowStart || off + FRAME_HEADER_BYTES > windowStart + windowLen) {
          const jumped = off > windowStart + window.byteLength
          windowStart = off
          const want = Math.min(jumped ? WALK_HEADER_READ_BYTES : window.byteLength, size - off)
          windowLen = readFully(fs, fd, window.subarray(0, want), off)
          if (windowLen < FRAME_HEADER_BYTES) return undefined // (shorter than its size said)
        }
        const checked = checkFrameHeader(window, off - windowStart)
        if ('reason' in checked) return undefined
        const end = off + FRAME_HEADER_BYTES + checked.length
        if (end > size) break // (a frame cut short: the torn tail)
        if (acks.take(checked)) {
          // A header and nothing else, numbered by what it acknowledges, not in the frames' order.
          off = end
          continue
        }
        // A frame that does not belong here (numbered below what came before): the scan sets it aside.
        if (checked.firstSeq < nextSeq) return undefined
        last = { offset: off, header: checked }
        nextSeq = checked.firstSeq + checked.count
        off = end
      }
      if (last) {
        const header = new Uint8Array(FRAME_HEADER_BYTES)
        const payload = new Uint8Array(last.header.length)
        if (readFully(fs, fd, header, last.offset) < FRAME_HEADER_BYTES) return undefined
        if (readFully(fs, fd, payload, last.offset + FRAME_HEADER_BYTES) < payload.byteLength)
          return undefined
        if (crc32c(payload) !== payloadCrcOf(header, 0)) return undefined
      }
      return { validEnd: off, tornBytes: size - off, nextSeq, ackedSeq: acks.ackedSeq }
    } finally {
      fs.closeSync(fd)
    }
  } catch (cause) {
    throw ioError(`reading ${path}`, cause)
  }
}

/** The window walkSegmentFile reads headers through. */
const WALK_WINDOW_BYTES = 16 * 1024

/** What walkSegmentFile reads at a header that follows a frame larger than its window. */
const WALK_HEADER_READ_BYTES = 512

function readFully(fs: WalFs, fd: number, into: Uint8Array, position: number): number {
  let done = 0
  while (done < into.byteLength) {
    const n = fs.readSync(fd, into, done, into.byteLength - done, position + done)
    if (n === 0) break
    done += n
  }
  return done
}

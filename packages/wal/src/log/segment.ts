import type { FrameHeader } from '../format/frame.ts'
import { type SegmentScan, scanSegment, scanSegmentChunks } from '../format/segment-scan.ts'
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

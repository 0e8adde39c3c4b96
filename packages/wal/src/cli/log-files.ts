import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { decodeWatermark } from '../format/watermark.ts'
import { nodeFs } from '../log/fs.ts'
import { ACK_FILE, listSegments, type SegmentListing } from '../log/layout.ts'

/**
 * Read-only access to a log directory for the CLI: segment names in order
 * and the watermark. Never goes through `WriteAheadLog.open`, which would
 * truncate a torn tail and delete acknowledged segments.
 */

/** Exit codes shared by every command. */
export const ExitCode = {
  /** Everything read checks out. */
  OK: 0,
  /** Something on disk could not be read: a damaged region, a frame that fails authentication, a damaged watermark. */
  DAMAGED: 1,
  /** Bad arguments, a missing directory, an unreadable or malformed key. */
  USAGE: 2,
} as const

/**
 * Segment names the log uses, in order, and those it moves aside (numbers
 * past 2^53): the log's own listing (log/layout.ts).
 */
export function usableSegmentNames(dir: string): SegmentListing {
  return listSegments(nodeFs, dir)
}

export interface WatermarkRead {
  /** The acknowledged sequence, or undefined when the file is missing or damaged. */
  readonly ackedSeq: number | undefined
  readonly state: 'ok' | 'missing' | 'damaged'
}

/** The `ack` file; a damaged one reads as nothing acknowledged, as recovery does. */
export function readWatermark(dir: string): WatermarkRead {
  let bytes: Uint8Array
  try {
    bytes = readFileSync(join(dir, ACK_FILE))
  } catch {
    return { ackedSeq: undefined, state: 'missing' }
  }
  const ackedSeq = decodeWatermark(bytes)
  return { ackedSeq, state: ackedSeq === undefined ? 'damaged' : 'ok' }
}

/** What the CLI needs of a segment scan to find its acknowledgement records. */
interface AckScan {
  readonly ackedSeq: number | undefined
  readonly headValid: boolean
}

/**
 * The highest acknowledgement record recovery would take (log/recover.ts):
 * the last segment's, or — when that one's start is missing or damaged — the
 * one before it's. `scan(i)` scans segment `i` of `count`.
 */
export function recordedAck(count: number, scan: (i: number) => AckScan): number | undefined {
  if (count === 0) return undefined
  const last = scan(count - 1)
  if (last.ackedSeq !== undefined || last.headValid || count < 2) return last.ackedSeq
  return scan(count - 2).ackedSeq
}

/** The watermark the log would start from: the `ack` file's or an acknowledgement record's, the higher. */
export function effectiveAck(watermark: WatermarkRead, records: number | undefined): number {
  return Math.max(watermark.ackedSeq ?? 0, records ?? 0)
}

import type { WalFs } from './fs.ts'

/**
 * The log directory's layout: every name the log (and `vinequeue-wal`, which
 * reads the same directory) gives a file, and their modes.
 *
 *   dir/                        DIR_MODE
 *     00000000000000000000.wal  a segment, named by its first sequence number (FILE_MODE)
 *     ack                       the watermark (format/watermark.ts)
 *     id                        the log's identity: 32 hex digits (identity.ts)
 *     clean                     the clean-close record (format/clean-close.ts)
 *     lock                      the owner while open (dir-lock.ts)
 *     reserve                   space given back on a full disk (reserve.ts)
 *     next-segment              the next segment, pre-created empty (segment-writer.ts)
 *     quarantine/               damage kept aside (quarantine.ts)
 *
 * A control file (`ack`, `clean`, `id`) is created as `<name>.tmp` and renamed over
 * its name (io.ts `writeControlFile`); a stale lock is replaced through
 * `lock.<pid>.tmp`.
 */

export const ACK_FILE = 'ack'
export const CLEAN_FILE = 'clean'
export const ID_FILE = 'id'
export const LOCK_FILE = 'lock'
export const RESERVE_FILE = 'reserve'
export const QUARANTINE_DIR = 'quarantine'
/**
 * The next segment, created empty while the current one fills and renamed
 * to its segment name at the rotation (segment-writer.ts). Not named like a
 * segment: nothing that lists segments (recovery, retention, the CLI) sees it.
 */
export const NEXT_SEGMENT_FILE = 'next-segment'

/** Files the log writes: only its owner reads them (payloads may hold personal data). */
export const FILE_MODE = 0o600
export const DIR_MODE = 0o700

export const SEGMENT_SUFFIX = '.wal'
/**
 * A segment's name: its first sequence number, zero-padded to 20 digits (every
 * u64 fits), so that names sort in sequence order.
 */
const SEGMENT_NAME = /^\d{20}\.wal$/

export function segmentName(firstSeq: number): string {
  return `${String(firstSeq).padStart(20, '0')}${SEGMENT_SUFFIX}`
}

export function isSegmentName(name: string): boolean {
  return SEGMENT_NAME.test(name)
}

/** The first sequence number a segment's name gives (past 2^53 for a stray file: see `listSegments`). */
export function segmentFirstSeq(name: string): number {
  return Number.parseInt(name, 10)
}

/** The name a control file is written under before it is renamed over `name`. */
export function tmpName(name: string): string {
  return `${name}.tmp`
}

/** The name a stale lock is replaced through (one per process: two takers do not share it). */
export function lockTmpName(pid: number): string {
  return `${LOCK_FILE}.${pid}.tmp`
}

export interface SegmentListing {
  /** Segment names the log uses, in sequence order. */
  readonly names: string[]
  /**
   * Files named like segments whose number is past 2^53: not a segment of
   * this log (it would poison every sequence number after it); the log moves
   * them to quarantine at open.
   */
  readonly stray: string[]
}

/** The segments in `dir`. Throws the system error when the directory cannot be listed. */
export function listSegments(fs: Pick<WalFs, 'readdirSync'>, dir: string): SegmentListing {
  const all = fs.readdirSync(dir).filter(isSegmentName).sort()
  const usable = (n: string): boolean => Number.isSafeInteger(segmentFirstSeq(n))
  return { names: all.filter(usable), stray: all.filter((n) => !usable(n)) }
}

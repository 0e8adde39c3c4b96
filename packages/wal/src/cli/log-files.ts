import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { decodeWatermark } from '../format/watermark.ts'

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

/** Segment file names, in sequence order (they are named by their zero-padded first sequence number). */
export function segmentNames(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => /^\d{20}\.wal$/.test(n))
    .sort()
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
    bytes = readFileSync(join(dir, 'ack'))
  } catch {
    return { ackedSeq: undefined, state: 'missing' }
  }
  const ackedSeq = decodeWatermark(bytes)
  return { ackedSeq, state: ackedSeq === undefined ? 'damaged' : 'ok' }
}

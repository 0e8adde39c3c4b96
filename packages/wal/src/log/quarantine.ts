import { join } from 'node:path'
import type { WalFs } from './fs.ts'
import { writeFully } from './io.ts'
import { DIR_MODE, FILE_MODE, QUARANTINE_DIR } from './layout.ts'

/**
 * Damage found in a log: what could not be read, and where its bytes were
 * kept. Nothing the log cannot read is deleted unseen: before the segment
 * holding it can be deleted (once the watermark passes it) its bytes are
 * copied to `quarantine/` in the log's directory, which `vinequeue-wal`
 * reads (inspect, verify, dump --quarantine).
 *
 * - `corrupt`: bytes holding no valid frame (a CRC mismatch, a garbled or
 *   zeroed region, the torn end of a segment that was followed by another).
 * - `auth`: a frame that failed authentication while frames of the same key
 *   id authenticate (tampered or damaged past its CRC). A frame whose key
 *   is probably wrong is not damage: the log is not read past it.
 * - `misplaced`: valid frames whose sequence numbers do not belong in their
 *   segment (a copied or renamed file).
 * - `gap`: sequence numbers no frame holds (a missing segment, lost frames).
 * - `stray`: a file named like a segment that cannot be one (its number is
 *   past 2^53): moved whole into `quarantine/`.
 */
export type WalDamageKind = 'corrupt' | 'auth' | 'misplaced' | 'gap' | 'stray'

export interface WalDamage {
  readonly kind: WalDamageKind
  /** The segment file it was found in (gaps: the segment after the gap, if any). */
  readonly segment?: string
  /** Byte range [start, end) in that segment (not for gaps). */
  readonly start?: number
  readonly end?: number
  /** Sequence numbers [fromSeq, toSeq) lost, when known (gaps, auth, misplaced). */
  readonly fromSeq?: number
  readonly toSeq?: number
  /** Path of the copy in `quarantine/` (not for gaps: there are no bytes). */
  readonly quarantined?: string
  /** One line for people: what, where, and what happened to it. */
  readonly message: string
}

/** `<segment>@<start>-<end>.<kind>`: the CLI parses it back (cli/log-files.ts). */
export function quarantineName(segment: string, start: number, end: number, kind: WalDamageKind): string {
  return `${segment}@${start}-${end}.${kind}`
}

/**
 * Writes `bytes` to `quarantine/<name>` durably (fdatasync, then the
 * directories' fsync) and returns its path. A copy already there (the same
 * damage met in an earlier run, before the segment could be deleted) is kept.
 * Throws the system error (ENOSPC…) with nothing left half-written.
 */
export function writeQuarantine(fs: WalFs, dir: string, name: string, bytes: Uint8Array): string {
  const qdir = join(dir, QUARANTINE_DIR)
  fs.mkdirSync(qdir, { recursive: true, mode: DIR_MODE })
  const path = join(qdir, name)
  let fd: number
  try {
    fd = fs.openSync(path, 'wx', FILE_MODE)
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'EEXIST') return path
    throw cause
  }
  try {
    writeFully(fs, fd, bytes, 0)
    fs.fdatasyncSync(fd)
  } catch (cause) {
    try {
      fs.closeSync(fd)
      fs.unlinkSync(path)
    } catch {}
    throw cause
  }
  fs.closeSync(fd)
  syncDir(fs, qdir)
  syncDir(fs, dir)
  return path
}

/** Moves a whole file into `quarantine/` (a stray file the log cannot use). */
export function moveToQuarantine(fs: WalFs, dir: string, name: string): string {
  const qdir = join(dir, QUARANTINE_DIR)
  fs.mkdirSync(qdir, { recursive: true, mode: DIR_MODE })
  const path = join(qdir, name)
  fs.renameSync(join(dir, name), path)
  syncDir(fs, qdir)
  syncDir(fs, dir)
  return path
}

function syncDir(fs: WalFs, path: string): void {
  const fd = fs.openSync(path, 'r')
  try {
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

import { join } from 'node:path'
import {
  type CleanClose,
  cleanCloseHolds,
  decodeCleanClose,
  encodeCleanClose,
} from '../format/clean-close.ts'
import { isTornWrite } from '../format/segment-scan.ts'
import { decodeWatermark } from '../format/watermark.ts'
import type { DamageKeeper } from './damage-keeper.ts'
import { acquireDirLock } from './dir-lock.ts'
import type { WalFs } from './fs.ts'
import { ioError, withFd, writeControlFile } from './io.ts'
import {
  ACK_FILE,
  CLEAN_FILE,
  DIR_MODE,
  listSegments,
  type SegmentListing,
  segmentFirstSeq,
} from './layout.ts'
import { scanDeferred } from './reader.ts'
import type { Reserve } from './reserve.ts'
import { createWatermark } from './retention.ts'
import { type Segment, scanSegmentFile, WALK_MIN_BYTES, walkSegmentFile } from './segment.ts'

/** What opening found on disk. */
export interface RecoveryReport {
  readonly segments: number
  /** Frames in the last segment (the one scanned at open). */
  readonly frames: number
  /**
   * Items not yet acknowledged: exact for the last segment, from segment
   * names for older ones (an upper bound until they are read: damaged frames
   * in them are found and counted by a reader).
   */
  readonly pendingItems: number
  /** Damaged regions skipped in the last segment (their items are lost; never parsed as data). */
  readonly corruptRegions: number
  /** Bytes of torn tail truncated (a write the crash cut short). */
  readonly truncatedBytes: number
  /** The watermark file was missing or damaged: everything is re-delivered. */
  readonly watermarkReset: boolean
  /**
   * The log was closed cleanly (its `clean` record matched the last segment):
   * that segment was not scanned at open (`frames` is 0); a reader checks it
   * when it reaches it, and appends go to a new segment.
   */
  readonly cleanClose: boolean
  /**
   * The last segment (at least 4 MiB, not closed cleanly) was walked header
   * by header instead of scanned (`frames` is 0): its payloads are checked
   * by a reader when it reaches them, as an older segment's are, and appends
   * go to a new segment. A torn tail is still cut at open.
   */
  readonly walked: boolean
  /** Pieces of damage copied (or moved) to `quarantine/` while opening. */
  readonly quarantined: number
}

/** What recovery leaves for the log to go on from. */
export interface Recovered {
  /** The segments, oldest first; only the last one scanned (`frames` set), unless it closed cleanly. */
  readonly segments: Segment[]
  /** The sequence number the next item takes (never below the watermark). */
  readonly nextSeq: number
  /**
   * The highest acknowledgement found: the watermark file's, or an
   * acknowledgement record in the last segment (or, when that one's start
   * is missing or damaged — a crash right after it was created — in the one
   * before it), whichever is higher. 0 when none.
   */
  readonly ackedSeq: number
  /** The watermark file's (0 when it was missing or damaged). */
  readonly fileAckedSeq: number
  readonly frames: number
  readonly corruptRegions: number
  readonly truncatedBytes: number
  readonly watermarkReset: boolean
  readonly cleanClose: boolean
  readonly walked: boolean
  /**
   * `nextSeq` is past every sequence number the log ever gave: a segment is
   * left (numbers go on from its last frame), or the watermark was read
   * (every deleted segment lay below it). False only with neither.
   */
  readonly continuous: boolean
}

/** The report of what `recover` found, once the log has settled on it (delivered segments deleted). */
export function recoveryReport(
  found: Recovered,
  segments: number,
  pendingItems: number,
  quarantined: number,
): RecoveryReport {
  const { frames, corruptRegions, truncatedBytes, watermarkReset, cleanClose, walked } = found
  return {
    segments,
    frames,
    pendingItems,
    corruptRegions,
    truncatedBytes,
    watermarkReset,
    cleanClose,
    walked,
    quarantined,
  }
}

/**
 * Creates the directory (0700) if needed and takes its lock (through the
 * reserve: on a full disk the lock file may need its space).
 */
export function lockDir(fs: WalFs, dir: string, reserve: Reserve): void {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: DIR_MODE })
  } catch (cause) {
    throw ioError(`mkdir ${dir}`, cause)
  }
  reserve.run(() => acquireDirLock(fs, dir))
}

/**
 * Opening reads the watermark, lists the segments and scans only the last
 * one (where a crash can leave a torn tail, cut here so appends continue
 * after the last valid frame; its acknowledgement records count with the
 * watermark) — or, when it is large, walks its frame headers (segment.ts
 * walkSegmentFile, records included), cuts a torn tail the same way and
 * leaves the payloads to readers, appends going to a new segment. Older
 * segments were complete when the next
 * one was started; a reader checks them frame by frame when it reaches
 * them, so opening a log with a large backlog takes milliseconds. After a
 * clean close (its `clean` record still true of the last segment) not even
 * that one is scanned. Damage found is handed to `keeper`, which also gets
 * its floor for gaps. Run with the directory locked.
 */
export function recover(fs: WalFs, dir: string, keeper: DamageKeeper): Recovered {
  let ackedSeq = 0
  let watermarkReset = false
  let watermarkOk = false
  try {
    const acked = decodeWatermark(fs.readFileSync(join(dir, ACK_FILE)))
    if (acked === undefined) watermarkReset = true
    else {
      ackedSeq = acked
      watermarkOk = true
    }
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('reading the watermark', cause)
  }
  if (!watermarkOk) {
    // Later acknowledgements overwrite this file in place, which needs no
    // new block: a full disk cannot stop the watermark (and with it the
    // deletion that frees space). Best effort here: without it the first
    // ack creates the file.
    try {
      createWatermark(fs, dir, ackedSeq)
    } catch {}
  }
  let listing: SegmentListing
  try {
    listing = listSegments(fs, dir)
  } catch (cause) {
    throw ioError(`listing ${dir}`, cause)
  }
  // A segment's name is its first sequence number: one past 2^53 cannot be
  // (a stray file); it would poison every sequence number after it.
  for (const name of listing.stray) keeper.moveStray(name)
  const names = listing.names
  const segments: Segment[] = []
  let nextSeq = 0
  let corruptRegions = 0
  let truncatedBytes = 0
  let frames = 0
  let cleanClose = false
  let walked = false
  /** The last segment, scanned, when no valid frame or record starts it. */
  let headless: Segment | undefined
  const clean = readCleanClose(fs, dir)
  for (const [i, name] of names.entries()) {
    const path = join(dir, name)
    const firstSeq = segmentFirstSeq(name)
    nextSeq = Math.max(nextSeq, firstSeq)
    const last = i === names.length - 1
    // Older segments, and a last one closed cleanly and untouched since, are
    // not scanned now: a reader checks them when it reaches them.
    const size =
      !last || clean?.firstSeq === firstSeq ? withFd(fs, path, 'r', (fd) => fs.fstatSizeSync(fd)) : -1
    if (!last || cleanCloseHolds(clean, firstSeq, size)) {
      segments.push({ name, path, firstSeq, frames: undefined, size, unsaved: [] })
      if (last) {
        nextSeq = Math.max(nextSeq, clean!.nextSeq) // (appends start a new segment)
        cleanClose = true
      }
      continue
    }
    // A large last segment is walked, not scanned: it is left to readers as
    // an older one is, and appends start a new segment.
    const bytes = size >= 0 ? size : withFd(fs, path, 'r', (fd) => fs.fstatSizeSync(fd))
    const walk = bytes >= WALK_MIN_BYTES ? walkSegmentFile(fs, path, firstSeq) : undefined
    if (walk) {
      const seg: Segment = { name, path, firstSeq, frames: undefined, size: walk.validEnd, unsaved: [] }
      if (walk.tornBytes > 0) {
        cutTail(fs, keeper, seg, walk.validEnd, walk.validEnd + walk.tornBytes)
        truncatedBytes += walk.tornBytes
      }
      // (A walk starts at a valid header, so the segment is never headless.)
      seg.ackedSeq = walk.ackedSeq
      segments.push(seg)
      nextSeq = Math.max(nextSeq, walk.nextSeq)
      walked = true
      continue
    }
    const scan = scanSegmentFile(fs, path)
    const seg: Segment = { name, path, firstSeq, frames: undefined, size: scan.validEnd, unsaved: [] }
    corruptRegions += scan.corruptRegions
    for (const d of scan.damaged.slice(0, scan.corruptRegions)) keeper.save(seg, d.start, d.end, 'corrupt')
    seg.frames = keeper.checkFrames(seg, scan.frames, undefined)
    frames += seg.frames.length
    if (scan.tornBytes > 0) {
      cutTail(fs, keeper, seg, scan.validEnd, scan.validEnd + scan.tornBytes)
      truncatedBytes += scan.tornBytes
    }
    seg.ackedSeq = scan.ackedSeq
    segments.push(seg)
    for (const f of seg.frames) nextSeq = Math.max(nextSeq, f.header.firstSeq + f.header.count)
    if (scan.ackedSeq === undefined && !scan.headValid) headless = seg
  }
  keeper.corruptRegions = corruptRegions
  // Every segment starts with the highest acknowledgement record written
  // before it (segment-writer.ts): a last one whose start is missing or
  // damaged sends recovery to the one before for it. (A log written before
  // acknowledgement records has a valid frame at the start of its last
  // segment: no second scan.)
  const previous = headless && segments.at(-2)
  if (previous) scanDeferred(fs, segments, keeper, previous)
  const recordAck = Math.max(segments.at(-1)?.ackedSeq ?? 0, previous ? (previous.ackedSeq ?? 0) : 0)
  const fileAckedSeq = ackedSeq
  ackedSeq = Math.max(ackedSeq, recordAck)
  keeper.floor = watermarkOk ? ackedSeq : Math.max(segments[0]?.firstSeq ?? nextSeq, recordAck)
  // The watermark can be ahead of the data (frames lost to damage) or behind it.
  nextSeq = Math.max(nextSeq, ackedSeq)
  const continuous = watermarkOk || segments.length > 0
  return {
    segments,
    nextSeq,
    ackedSeq,
    fileAckedSeq,
    frames,
    corruptRegions,
    truncatedBytes,
    watermarkReset,
    cleanClose,
    walked,
    continuous,
  }
}

/**
 * Cuts the bytes [validEnd, tornEnd) after the last valid frame of the last
 * segment, so appends continue after that frame. A write the crash cut short
 * is just cut; anything else there is damage, kept in quarantine first (if
 * that copy fails, the open fails rather than cut it unseen).
 */
function cutTail(fs: WalFs, keeper: DamageKeeper, seg: Segment, validEnd: number, tornEnd: number): void {
  if (!isTornWrite(keeper.readRange(seg.path, validEnd, tornEnd))) {
    let quarantined: string
    try {
      quarantined = keeper.copy(seg, validEnd, tornEnd, 'corrupt')
    } catch (cause) {
      throw ioError(`copying damaged bytes of ${seg.name} to quarantine`, cause)
    }
    keeper.report({
      kind: 'corrupt',
      segment: seg.name,
      start: validEnd,
      end: tornEnd,
      quarantined,
      message: `${seg.name} bytes ${validEnd}–${tornEnd} (${tornEnd - validEnd} B) after its last valid frame hold no valid frame and are not a write cut short (damaged): copied to ${quarantined}, then cut`,
    })
  }
  withFd(fs, seg.path, 'r+', (fd) => {
    fs.ftruncateSync(fd, validEnd)
    fs.fdatasyncSync(fd)
  })
}

/** The `clean` record, or undefined when missing, unreadable or damaged (the last segment is then scanned). */
function readCleanClose(fs: WalFs, dir: string): CleanClose | undefined {
  try {
    return decodeCleanClose(fs.readFileSync(join(dir, CLEAN_FILE)))
  } catch {
    return undefined
  }
}

/**
 * Records a clean close (`close()`, everything durable) as a control file:
 * best effort, since without the record the next open only scans the last
 * segment.
 */
export function recordCleanClose(
  fs: WalFs,
  dir: string,
  segments: readonly Segment[],
  nextSeq: number,
): void {
  const tail = segments.at(-1)
  if (!tail || tail.size === 0) return
  const bytes = encodeCleanClose({ firstSeq: tail.firstSeq, size: tail.size, nextSeq })
  try {
    writeControlFile(fs, dir, CLEAN_FILE, bytes, 'the clean-close record')
  } catch {}
}

import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { cleanCloseHolds, decodeCleanClose } from '../format/clean-close.ts'
import { readDirLock } from '../log/dir-lock.ts'
import { readLogId } from '../log/identity.ts'
import { CLEAN_FILE, NEXT_SEGMENT_FILE, QUARANTINE_DIR, segmentFirstSeq } from '../log/layout.ts'
import { analyzeLog, formatGap, formatMisplaced, type SegmentReport } from './log-analysis.ts'
import { ExitCode } from './log-files.ts'

/**
 * `inspect DIR`: the log's id, segments (size, frames, items, sequence range), watermark,
 * pending items, gaps in sequence numbers, misplaced frames, stray files,
 * what the log moved to quarantine, the lock, the clean-close record, and
 * the next segment created ahead of a rotation when there is one.
 */
export function inspect(dir: string): number {
  const log = analyzeLog(dir)
  const { segments, watermark } = log
  const acked = log.ackedSeq
  const file =
    watermark.state === 'ok'
      ? String(watermark.ackedSeq)
      : watermark.state === 'missing'
        ? 'missing (nothing acknowledged)'
        : 'DAMAGED (reads as 0: everything is re-delivered)'
  // Acknowledgement records in the last segment can be ahead of the file (it catches up at the next open or close).
  const state =
    log.recordAckedSeq !== undefined && log.recordAckedSeq > (watermark.ackedSeq ?? 0)
      ? `${acked} (ack file ${file}; acknowledgement record ${log.recordAckedSeq} in the last segment)`
      : file
  const out = process.stdout
  const id = readLogId({ readFileSync }, dir) ?? 'none (the next open creates one)'
  out.write(`directory  ${dir}\nlog id     ${id}\nwatermark  ${state}\nsegments   ${segments.length}\n`)
  let pending = 0
  for (const s of segments) {
    const range = s.firstSeq === undefined ? 'no valid frame' : `items ${s.firstSeq}…${s.endSeq! - 1}`
    const damage = s.damaged.length > 0 ? `, ${s.damaged.length} damaged region(s)` : ''
    out.write(`  ${s.name}  ${s.bytes} B  ${s.frames} frames  ${s.items} items  ${range}${damage}\n`)
    if (s.endSeq !== undefined && s.endSeq > acked) pending += s.endSeq - Math.max(acked, s.firstSeq!)
  }
  out.write(`pending    ${pending} items\nsize       ${segments.reduce((n, s) => n + s.bytes, 0)} B\n`)
  const next = fileSize(join(dir, NEXT_SEGMENT_FILE))
  if (next !== undefined)
    out.write(
      `next       ${NEXT_SEGMENT_FILE} (${next} B): created ahead of the next rotation; not a segment, never read (emptied when the log takes it)\n`,
    )
  const missing = log.gaps.reduce((n, g) => n + g.toSeq - g.fromSeq, 0)
  out.write(
    `gaps       ${log.gaps.length === 0 ? 'none' : `${log.gaps.length} (${missing} items missing)`}\n`,
  )
  for (const g of log.gaps) out.write(`  ${formatGap(g)}\n`)
  for (const m of log.misplaced) out.write(`  misplaced: ${formatMisplaced(m)}\n`)
  for (const name of log.stray)
    out.write(`  stray: ${name} (named past 2^53; moved to ${QUARANTINE_DIR}/ at the next open)\n`)
  out.write(
    `quarantine ${
      log.quarantine.length === 0
        ? 'empty'
        : `${log.quarantine.length} file(s) in ${join(dir, QUARANTINE_DIR)} (damage kept aside; dump --quarantine reads their frames)`
    }\n`,
  )
  for (const q of log.quarantine) out.write(`  ${q.name}  ${q.bytes} B  ${q.kind}\n`)
  const lock = readDirLock(dir)
  out.write(
    `lock       ${
      lock === undefined
        ? 'none (not open)'
        : lock.alive
          ? `process ${lock.pid} (running: the log is open)`
          : `process ${lock.pid} (gone: stale, taken over at the next open)`
    }\n`,
  )
  out.write(`clean      ${cleanClose(dir, segments)}\n`)
  return ExitCode.OK
}

/** The size of `path`, or undefined when there is no such file. */
function fileSize(path: string): number | undefined {
  try {
    return statSync(path).size
  } catch {
    return undefined
  }
}

/** Whether the next open will skip scanning the last segment (its `clean` record still matches). */
function cleanClose(dir: string, segments: readonly SegmentReport[]): string {
  let bytes: Uint8Array
  try {
    bytes = readFileSync(join(dir, CLEAN_FILE))
  } catch {
    return 'no record (the last segment is scanned at the next open)'
  }
  const record = decodeCleanClose(bytes)
  if (!record) return 'DAMAGED record (ignored: the last segment is scanned at the next open)'
  const last = segments.at(-1)
  return last && cleanCloseHolds(record, segmentFirstSeq(last.name), last.bytes)
    ? `closed cleanly at ${last.name} (${record.size} B): not scanned at the next open`
    : 'stale record (appended to since, or a crash): the last segment is scanned at the next open'
}

import { QUARANTINE_DIR } from '../log/layout.ts'
import { analyzeLog, formatGap, formatMisplaced } from './log-analysis.ts'
import { ExitCode } from './log-files.ts'

/**
 * `verify DIR`: every CRC checked, and the sequence: damage listed with byte
 * offsets, gaps in sequence numbers (a missing segment: items lost without a
 * damaged byte to show for it), misplaced frames, stray files, and what the
 * log has moved to quarantine. Exit 1 when any of it is there.
 */
export function verify(dir: string): number {
  const log = analyzeLog(dir)
  const out = process.stdout
  let problems = 0
  for (const s of log.segments) {
    for (const d of s.damaged) {
      problems++
      out.write(`DAMAGED ${s.name} bytes ${d.start}–${d.end} (${d.end - d.start} B)\n`)
    }
  }
  if (log.watermark.state === 'damaged') {
    problems++
    out.write('DAMAGED ack (watermark)\n')
  }
  for (const g of log.gaps) {
    problems++
    out.write(`GAP ${formatGap(g)}\n`)
  }
  for (const m of log.misplaced) {
    problems++
    out.write(`MISPLACED ${formatMisplaced(m)}\n`)
  }
  for (const name of log.stray) {
    problems++
    out.write(
      `STRAY ${name}: named past 2^53, not a segment (moved to ${QUARANTINE_DIR}/ at the next open)\n`,
    )
  }
  for (const q of log.quarantine) {
    problems++
    out.write(`QUARANTINED ${QUARANTINE_DIR}/${q.name} (${q.bytes} B, ${q.kind})\n`)
  }
  const frames = log.segments.reduce((n, s) => n + s.frames, 0)
  out.write(
    problems === 0
      ? `OK ${log.segments.length} segment(s), ${frames} frame(s), every CRC valid, no gap\n`
      : `${problems} problem(s); ${frames} valid frame(s) kept\n`,
  )
  return problems === 0 ? ExitCode.OK : ExitCode.DAMAGED
}

import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { cleanCloseHolds, decodeCleanClose } from '../format/clean-close.ts'
import { scanSegment } from '../format/segment-scan.ts'
import { readDirLock } from '../log/dir-lock.ts'
import { ExitCode, readWatermark, segmentNames } from './log-files.ts'

export interface SegmentReport {
  readonly name: string
  readonly bytes: number
  readonly frames: number
  readonly items: number
  readonly firstSeq: number | undefined
  readonly endSeq: number | undefined
  readonly damaged: ReadonlyArray<{ readonly start: number; readonly end: number }>
}

/** Scans every segment (CRCs checked) without keeping its bytes. */
export function scanSegments(dir: string): SegmentReport[] {
  return segmentNames(dir).map((name): SegmentReport => {
    const bytes = readFileSync(join(dir, name))
    const scan = scanSegment(bytes)
    const first = scan.frames[0]?.header
    const last = scan.frames.at(-1)?.header
    return {
      name,
      bytes: bytes.byteLength,
      frames: scan.frames.length,
      items: scan.frames.reduce((s, f) => s + f.header.count, 0),
      firstSeq: first?.firstSeq,
      endSeq: last ? last.firstSeq + last.count : undefined,
      damaged: scan.damaged,
    }
  })
}

/** `inspect DIR`: segments (size, frames, items, sequence range), watermark, pending items. */
export function inspect(dir: string): number {
  const segments = scanSegments(dir)
  const watermark = readWatermark(dir)
  const acked = watermark.ackedSeq ?? 0
  const state =
    watermark.state === 'ok'
      ? String(watermark.ackedSeq)
      : watermark.state === 'missing'
        ? 'missing (nothing acknowledged)'
        : 'DAMAGED (reads as 0: everything is re-delivered)'
  const out = process.stdout
  out.write(`directory  ${dir}\nwatermark  ${state}\nsegments   ${segments.length}\n`)
  let pending = 0
  for (const s of segments) {
    const range = s.firstSeq === undefined ? 'no valid frame' : `items ${s.firstSeq}…${s.endSeq! - 1}`
    const damage = s.damaged.length > 0 ? `, ${s.damaged.length} damaged region(s)` : ''
    out.write(`  ${s.name}  ${s.bytes} B  ${s.frames} frames  ${s.items} items  ${range}${damage}\n`)
    if (s.endSeq !== undefined && s.endSeq > acked) pending += s.endSeq - Math.max(acked, s.firstSeq!)
  }
  out.write(`pending    ${pending} items\nsize       ${segments.reduce((n, s) => n + s.bytes, 0)} B\n`)
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

/** Whether the next open will skip scanning the last segment (its `clean` record still matches). */
function cleanClose(dir: string, segments: readonly SegmentReport[]): string {
  let bytes: Uint8Array
  try {
    bytes = readFileSync(join(dir, 'clean'))
  } catch {
    return 'no record (the last segment is scanned at the next open)'
  }
  const record = decodeCleanClose(bytes)
  if (!record) return 'DAMAGED record (ignored: the last segment is scanned at the next open)'
  const last = segments.at(-1)
  return last && cleanCloseHolds(record, Number.parseInt(last.name, 10), last.bytes)
    ? `closed cleanly at ${last.name} (${record.size} B): not scanned at the next open`
    : 'stale record (appended to since, or a crash): the last segment is scanned at the next open'
}

#!/usr/bin/env node
/**
 * `vinequeue-wal inspect DIR` — segments, frames, items, watermark, pending.
 * `vinequeue-wal verify DIR`  — checks every CRC; lists damage with offsets;
 *                               exit 0 healthy, 1 damaged, 2 usage error.
 * Read-only: nothing is truncated or deleted (opening the log would).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { scanSegment } from '../format/segment-scan.ts'
import { decodeWatermark } from '../format/watermark.ts'

const USAGE = 'usage: vinequeue-wal inspect DIR | verify DIR'

interface SegmentReport {
  readonly name: string
  readonly bytes: number
  readonly frames: number
  readonly items: number
  readonly firstSeq: number | undefined
  readonly endSeq: number | undefined
  readonly damaged: ReadonlyArray<{ readonly start: number; readonly end: number }>
}

function readLog(dir: string): {
  segments: SegmentReport[]
  watermark: number | undefined
  watermarkState: string
} {
  const names = readdirSync(dir)
    .filter((n) => n.endsWith('.wal'))
    .sort()
  const segments = names.map((name): SegmentReport => {
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
  let watermark: number | undefined
  let watermarkState = 'missing (nothing acknowledged)'
  try {
    watermark = decodeWatermark(readFileSync(join(dir, 'ack')))
    watermarkState =
      watermark === undefined ? 'DAMAGED (reads as 0: everything is re-delivered)' : String(watermark)
  } catch {}
  return { segments, watermark, watermarkState }
}

function main(argv: readonly string[]): number {
  const [command, dir] = argv
  if ((command !== 'inspect' && command !== 'verify') || !dir) {
    process.stderr.write(`${USAGE}\n`)
    return 2
  }
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a directory')
  } catch (err) {
    process.stderr.write(`vinequeue-wal: ${dir}: ${(err as Error).message}\n`)
    return 2
  }
  const { segments, watermark, watermarkState } = readLog(dir)
  const acked = watermark ?? 0
  if (command === 'inspect') {
    const out = process.stdout
    out.write(`directory  ${dir}\nwatermark  ${watermarkState}\nsegments   ${segments.length}\n`)
    let pending = 0
    for (const s of segments) {
      const range = s.firstSeq === undefined ? 'no valid frame' : `items ${s.firstSeq}…${s.endSeq! - 1}`
      const damage = s.damaged.length > 0 ? `, ${s.damaged.length} damaged region(s)` : ''
      out.write(`  ${s.name}  ${s.bytes} B  ${s.frames} frames  ${s.items} items  ${range}${damage}\n`)
      if (s.endSeq !== undefined && s.endSeq > acked) pending += s.endSeq - Math.max(acked, s.firstSeq!)
    }
    out.write(`pending    ${pending} items\nsize       ${segments.reduce((n, s) => n + s.bytes, 0)} B\n`)
    return 0
  }
  let damaged = 0
  for (const s of segments) {
    for (const d of s.damaged) {
      damaged++
      process.stdout.write(`DAMAGED ${s.name} bytes ${d.start}–${d.end} (${d.end - d.start} B)\n`)
    }
  }
  if (watermark === undefined && watermarkState.startsWith('DAMAGED')) {
    damaged++
    process.stdout.write('DAMAGED ack (watermark)\n')
  }
  const frames = segments.reduce((n, s) => n + s.frames, 0)
  process.stdout.write(
    damaged === 0
      ? `OK ${segments.length} segment(s), ${frames} frame(s), every CRC valid\n`
      : `${damaged} damaged region(s); ${frames} valid frame(s) kept\n`,
  )
  return damaged === 0 ? 0 : 1
}

process.exitCode = main(process.argv.slice(2))

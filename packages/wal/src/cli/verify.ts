import { scanSegments } from './inspect.ts'
import { ExitCode, readWatermark } from './log-files.ts'

/** `verify DIR`: every CRC checked; damage listed with byte offsets. */
export function verify(dir: string): number {
  const segments = scanSegments(dir)
  let damaged = 0
  for (const s of segments) {
    for (const d of s.damaged) {
      damaged++
      process.stdout.write(`DAMAGED ${s.name} bytes ${d.start}–${d.end} (${d.end - d.start} B)\n`)
    }
  }
  if (readWatermark(dir).state === 'damaged') {
    damaged++
    process.stdout.write('DAMAGED ack (watermark)\n')
  }
  const frames = segments.reduce((n, s) => n + s.frames, 0)
  process.stdout.write(
    damaged === 0
      ? `OK ${segments.length} segment(s), ${frames} frame(s), every CRC valid\n`
      : `${damaged} damaged region(s); ${frames} valid frame(s) kept\n`,
  )
  return damaged === 0 ? ExitCode.OK : ExitCode.DAMAGED
}

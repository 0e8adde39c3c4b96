import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { WalError, WalErrorCodes } from '../errors.ts'
import { FRAME_HEADER_BYTES } from '../format/frame.ts'
import { decodePayload, type PayloadCodecOptions } from '../format/payload-codec.ts'
import { type ScannedFrame, scanSegment } from '../format/segment-scan.ts'
import { QUARANTINE_DIR } from '../log/layout.ts'
import { BatchFormatError, type BatchItem, batchItems } from './batch-records.ts'
import { formatGap, formatMisplaced, quarantineFiles, SequenceCheck } from './log-analysis.ts'
import { ExitCode, effectiveAck, readWatermark, recordedAck, usableSegmentNames } from './log-files.ts'

export interface DumpOptions {
  /** Include acknowledged items still on disk (default: only items at or above the watermark). */
  readonly all: boolean
  /** Only items with a sequence number at or above this one. */
  readonly fromSeq: number | undefined
  /** Decryption keys by key id (the caller wipes them afterwards). */
  readonly keys: ReadonlyMap<number, Uint8Array>
  /**
   * Dump the frames the log moved to `quarantine/` instead of the log's own
   * (each line then names its file: `"quarantined":"<name>"`).
   */
  readonly quarantine?: boolean
}

/**
 * JSON for a decoded msgpack value. JSON.stringify alone would print a
 * Buffer (msgpack bin) as `{"type":"Buffer","data":[…]}`, throw on a bigint
 * (msgpack int64/uint64) and drop an undefined item; here binary is
 * `{"$bin":"<base64>"}`, a 64-bit integer a number when it is exact as one
 * (within ±2^53) and a decimal string beyond, undefined null.
 */
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER)
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)

function jsonReplacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const original = this[key] // before toJSON: a Buffer is still a Buffer here
  if (original instanceof Uint8Array) {
    return { $bin: Buffer.from(original.buffer, original.byteOffset, original.byteLength).toString('base64') }
  }
  if (typeof value === 'bigint') {
    return value >= MIN_SAFE && value <= MAX_SAFE ? Number(value) : value.toString()
  }
  if (value === undefined) return null
  if (value instanceof Map) return Object.fromEntries(value)
  if (value instanceof Set) return [...value]
  return value
}

function itemLine(seq: number, item: BatchItem, from?: string): string {
  const origin = from === undefined ? '' : `,"quarantined":${JSON.stringify(from)}`
  if (item.raw) {
    const b = Buffer.from(item.bytes.buffer, item.bytes.byteOffset, item.bytes.byteLength)
    return `{"seq":${seq},"raw":"${b.toString('base64')}"${origin}}\n`
  }
  return `{"seq":${seq},"item":${JSON.stringify(item.value, jsonReplacer)}${origin}}\n`
}

/**
 * `dump DIR`: the items as NDJSON on stdout, in sequence order. A frame is
 * printed whole or not at all: one that fails its CRC (a damaged region),
 * authentication (wrong or missing key), or is not a batch of as many items
 * as its header says, is reported on stderr with its segment and byte offset,
 * and makes the exit code DAMAGED; so do gaps in sequence numbers, misplaced
 * frames and a non-empty quarantine. `--quarantine` dumps the frames kept
 * there instead. Read-only, like inspect and verify.
 */
export function dump(dir: string, options: DumpOptions): number {
  let problems = 0
  const report = (message: string): void => {
    problems++
    process.stderr.write(`vinequeue-wal: ${message}\n`)
  }
  const watermark = readWatermark(dir)
  if (watermark.state === 'damaged') {
    report('ack (watermark) is damaged: it reads as 0, every item on disk counts as pending')
  }
  const { names, stray } = usableSegmentNames(dir)
  // Acknowledgement records in the last segment count with the file, as at recovery.
  const acked = effectiveAck(
    watermark,
    recordedAck(names.length, (i) => scanSegment(readFileSync(join(dir, names[i]!)))),
  )
  const from = Math.max(options.fromSeq ?? 0, options.all ? 0 : acked)
  const keys: Record<number, Uint8Array> = Object.fromEntries(options.keys)
  const [anyKey] = options.keys.keys()
  // decodePayload reads keys by the id in each frame's header; keyId is only used to write.
  const codec: PayloadCodecOptions = anyKey === undefined ? {} : { encryption: { keyId: anyKey, keys } }
  const out = process.stdout
  let printed = 0
  /** Prints a frame's items at or above `from`; false when stdout went away. */
  const printFrame = (bytes: Uint8Array, name: string, frame: ScannedFrame, origin?: string): boolean => {
    const h = frame.header
    if (h.firstSeq + h.count <= from) return true
    const where = `${origin === undefined ? name : `${QUARANTINE_DIR}/${origin}`} offset ${frame.offset}`
    let items: BatchItem[]
    try {
      const payload = bytes.subarray(frame.offset + FRAME_HEADER_BYTES, frame.end)
      items = batchItems(decodePayload(payload, h, codec), h.count)
    } catch (err) {
      // WalError messages name the key id, never the key.
      let message = err instanceof Error ? err.message : String(err)
      if (err instanceof WalError && err.code === WalErrorCodes.KEY_MISSING) {
        message += ' (give it with --key-file or --key-env)'
      } else if (err instanceof BatchFormatError) {
        message = `frame at sequence ${h.firstSeq} is not a VineQueue batch: ${message}`
      } else if (!(err instanceof WalError)) {
        message = `frame at sequence ${h.firstSeq} could not be decoded: ${message}`
      }
      report(`${where}: ${message}; its ${h.count} item(s) are not dumped`)
      return true
    }
    // Built whole before writing: no partial frame on stdout.
    let lines = ''
    for (let i = Math.max(0, from - h.firstSeq); i < items.length; i++)
      lines += itemLine(h.firstSeq + i, items[i]!, origin)
    out.write(lines)
    printed += items.length - Math.max(0, from - h.firstSeq)
    // The reader went away (`dump | head`): stop reading the log.
    return !(out.errored || out.destroyed)
  }
  const quarantined = quarantineFiles(dir)
  if (options.quarantine) {
    // Whatever the log moved aside: frames (a frame failing authentication,
    // misplaced frames, a stray segment) are printed when they decode; bytes
    // holding no valid frame are reported.
    for (const q of quarantined) {
      const bytes = readFileSync(join(dir, QUARANTINE_DIR, q.name))
      const scan = scanSegment(bytes)
      for (const d of scan.damaged) {
        report(
          `${QUARANTINE_DIR}/${q.name} bytes ${d.start}–${d.end} (${d.end - d.start} B): no valid frame there`,
        )
      }
      for (const frame of scan.frames) {
        if (!printFrame(bytes, q.name, frame, q.name)) return problems > 0 ? ExitCode.DAMAGED : ExitCode.OK
      }
    }
  } else {
    const check = new SequenceCheck(watermark)
    for (const name of stray) report(`${name}: named past 2^53, not a segment of this log; not dumped`)
    for (const [i, name] of names.entries()) {
      const bytes = readFileSync(join(dir, name))
      const scan = scanSegment(bytes)
      for (const d of scan.damaged) {
        report(
          `${name} bytes ${d.start}–${d.end} (${d.end - d.start} B): no valid frame there, its items are not dumped`,
        )
      }
      const before = check.misplaced.length
      const frames = check.segment(name, names[i + 1], scan.frames)
      for (const m of check.misplaced.slice(before)) report(`${formatMisplaced(m)}; not dumped`)
      for (const frame of frames) {
        if (!printFrame(bytes, name, frame)) return problems > 0 ? ExitCode.DAMAGED : ExitCode.OK
      }
    }
    check.finish()
    for (const g of check.gaps) if (g.toSeq > from) report(formatGap(g))
    if (quarantined.length > 0) {
      report(
        `${QUARANTINE_DIR}/ holds ${quarantined.length} file(s) the log moved aside (damage): dump --quarantine prints what they hold`,
      )
    }
  }
  if (problems > 0) {
    process.stderr.write(`vinequeue-wal: ${problems} problem(s); ${printed} item(s) dumped\n`)
    return ExitCode.DAMAGED
  }
  return ExitCode.OK
}

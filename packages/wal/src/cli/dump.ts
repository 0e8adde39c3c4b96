import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { WalError, WalErrorCodes } from '../errors.ts'
import { FRAME_HEADER_BYTES } from '../format/frame.ts'
import { decodePayload, type PayloadCodecOptions } from '../format/payload-codec.ts'
import { scanSegment } from '../format/segment-scan.ts'
import { BatchFormatError, type BatchItem, batchItems } from './batch-records.ts'
import { ExitCode, readWatermark, segmentNames } from './log-files.ts'

export interface DumpOptions {
  /** Include acknowledged items still on disk (default: only items at or above the watermark). */
  readonly all: boolean
  /** Only items with a sequence number at or above this one. */
  readonly fromSeq: number | undefined
  /** Decryption keys by key id (the caller wipes them afterwards). */
  readonly keys: ReadonlyMap<number, Uint8Array>
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

function itemLine(seq: number, item: BatchItem): string {
  if (item.raw) {
    const b = Buffer.from(item.bytes.buffer, item.bytes.byteOffset, item.bytes.byteLength)
    return `{"seq":${seq},"raw":"${b.toString('base64')}"}\n`
  }
  return `{"seq":${seq},"item":${JSON.stringify(item.value, jsonReplacer)}}\n`
}

/**
 * `dump DIR`: the items as NDJSON on stdout, in sequence order. A frame is
 * printed whole or not at all: one that fails its CRC (a damaged region),
 * authentication (wrong or missing key), or is not a batch of as many items
 * as its header says, is reported on stderr with its segment and byte offset,
 * and makes the exit code DAMAGED. Read-only, like inspect and verify.
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
  const from = Math.max(options.fromSeq ?? 0, options.all ? 0 : (watermark.ackedSeq ?? 0))
  const keys: Record<number, Uint8Array> = Object.fromEntries(options.keys)
  const [anyKey] = options.keys.keys()
  // decodePayload reads keys by the id in each frame's header; keyId is only used to write.
  const codec: PayloadCodecOptions = anyKey === undefined ? {} : { encryption: { keyId: anyKey, keys } }
  const out = process.stdout
  let printed = 0
  for (const name of segmentNames(dir)) {
    const bytes = readFileSync(join(dir, name))
    const scan = scanSegment(bytes)
    for (const d of scan.damaged) {
      report(
        `${name} bytes ${d.start}–${d.end} (${d.end - d.start} B): no valid frame there, its items are not dumped`,
      )
    }
    for (const frame of scan.frames) {
      const h = frame.header
      if (h.firstSeq + h.count <= from) continue
      const where = `${name} offset ${frame.offset}`
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
        continue
      }
      // Built whole before writing: no partial frame on stdout.
      let lines = ''
      for (let i = Math.max(0, from - h.firstSeq); i < items.length; i++)
        lines += itemLine(h.firstSeq + i, items[i]!)
      out.write(lines)
      printed += items.length - Math.max(0, from - h.firstSeq)
      // The reader went away (`dump | head`): stop reading the log.
      if (out.errored || out.destroyed) return problems > 0 ? ExitCode.DAMAGED : ExitCode.OK
    }
  }
  if (problems > 0) {
    process.stderr.write(`vinequeue-wal: ${problems} problem(s); ${printed} item(s) dumped\n`)
    return ExitCode.DAMAGED
  }
  return ExitCode.OK
}

import { crc32c } from './crc.ts'

/**
 * One frame per batch, appended back to back in a segment file:
 *
 *   byte 0        4    5     6        8                16       20        24           28           32
 *   +-------------+----+-----+--------+----------------+--------+---------+------------+------------+---------
 *   | magic VQWF  | ver| flg | key id | first sequence | count  | length  | payload    | header     | payload…
 *   | u32         | u8 | u8  | u16    | u64            | u32    | u32     | CRC32C u32 | CRC32C u32 | `length` B
 *   +-------------+----+-----+--------+----------------+--------+---------+------------+------------+---------
 *
 * All little-endian. The header CRC32C covers bytes 0–27 (so the payload CRC
 * too); the payload CRC32C covers the payload. A reader trusts `length` only
 * after the header CRC matched, so a torn or garbled length is never followed
 * into the file; a frame whose header or payload does not check out is never
 * parsed as data.
 *
 * CRC32C (Castagnoli): crc.ts.
 */
export const FRAME_MAGIC = 0x46575156 // 'VQWF' read as little-endian bytes V Q W F
export const FRAME_VERSION = 1
export const FRAME_HEADER_BYTES = 32

/**
 * An acknowledgement record: a frame header alone (no payload) saying that
 * every item below `firstSeq` was delivered, written between the batch
 * frames of a segment so that the log's own group commit makes it durable
 * (no fdatasync of its own). Its version byte is 2, so a reader that knows
 * only batch frames (version 1: `@vinequeue/wal` before ack records) finds
 * a frame it cannot read — skipped and counted as a damaged region — and
 * never takes it for a batch of items.
 *
 *   magic VQWF | ver 2 | flags ACK | key id 0 | acked sequence u64 | count 0 | length 0 | CRCs
 */
export const ACK_RECORD_VERSION = 2

export const FrameFlag = {
  COMPRESSED: 1,
  ENCRYPTED: 2,
  /** An acknowledgement record (version 2, no payload): `firstSeq` is the acknowledged sequence number. */
  ACK: 4,
} as const

/** Largest payload a frame may carry (a sanity bound for readers). */
export const MAX_FRAME_PAYLOAD: number = 1024 * 1024 * 1024

export interface FrameHeader {
  readonly flags: number
  readonly keyId: number
  readonly firstSeq: number
  readonly count: number
  readonly length: number
}

/** Writes a frame (header + payload) into a new buffer. */
export function encodeFrame(
  payload: Uint8Array,
  header: Omit<FrameHeader, 'length'>,
  version: number = FRAME_VERSION,
): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.byteLength)
  const view = new DataView(out.buffer)
  view.setUint32(0, FRAME_MAGIC, true)
  view.setUint8(4, version)
  view.setUint8(5, header.flags)
  view.setUint16(6, header.keyId, true)
  view.setBigUint64(8, BigInt(header.firstSeq), true)
  view.setUint32(16, header.count, true)
  view.setUint32(20, payload.byteLength, true)
  view.setUint32(24, crc32c(payload), true)
  view.setUint32(28, crc32c(out, 0, 28), true)
  out.set(payload, FRAME_HEADER_BYTES)
  return out
}

export type FrameCheck =
  | { readonly ok: true; readonly header: FrameHeader; readonly payloadOffset: number; readonly end: number }
  /** Not enough bytes for a header or for the payload it announces. */
  | { readonly ok: false; readonly reason: 'short' }
  /** The bytes at this offset are not a valid frame. */
  | { readonly ok: false; readonly reason: 'bad-header' | 'bad-payload' | 'bad-version' }

/**
 * Checks the frame header starting at `offset` of `bytes` (its own CRC, not
 * the payload's): the header, or why not. Only a header that checks out
 * gives a `length` to follow.
 */
export function checkFrameHeader(
  bytes: Uint8Array,
  offset: number,
): FrameHeader | { readonly reason: 'short' | 'bad-header' | 'bad-version' } {
  if (bytes.byteLength - offset < FRAME_HEADER_BYTES) return { reason: 'short' }
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, FRAME_HEADER_BYTES)
  if (view.getUint32(0, true) !== FRAME_MAGIC) return { reason: 'bad-header' }
  const headerCrc = crc32c(bytes, offset, 28)
  if (view.getUint32(28, true) !== headerCrc) return { reason: 'bad-header' }
  const version = view.getUint8(4)
  const length = view.getUint32(20, true)
  if (version === ACK_RECORD_VERSION) {
    // Nothing but the header: anything else under this version is not one of ours.
    if (view.getUint8(5) !== FrameFlag.ACK || view.getUint32(16, true) !== 0 || length !== 0)
      return { reason: 'bad-version' }
  } else if (version !== FRAME_VERSION || view.getUint8(5) & FrameFlag.ACK) return { reason: 'bad-version' }
  if (length > MAX_FRAME_PAYLOAD) return { reason: 'bad-header' }
  return {
    flags: view.getUint8(5),
    keyId: view.getUint16(6, true),
    firstSeq: Number(view.getBigUint64(8, true)),
    count: view.getUint32(16, true),
    length,
  }
}

/** The payload CRC32C a checked header announces, at `offset` of `bytes` (the header's start). */
export function payloadCrcOf(bytes: Uint8Array, offset: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset + offset, FRAME_HEADER_BYTES).getUint32(24, true)
}

/** Checks the frame starting at `offset` of `bytes` (a whole segment or a window of it). */
export function checkFrame(bytes: Uint8Array, offset: number): FrameCheck {
  const header = checkFrameHeader(bytes, offset)
  if ('reason' in header) return { ok: false, reason: header.reason }
  const payloadOffset = offset + FRAME_HEADER_BYTES
  const end = payloadOffset + header.length
  if (end > bytes.byteLength) return { ok: false, reason: 'short' }
  const payloadCrc = crc32c(bytes, payloadOffset, header.length)
  if (payloadCrcOf(bytes, offset) !== payloadCrc) return { ok: false, reason: 'bad-payload' }
  return { ok: true, header, payloadOffset, end }
}

/** An acknowledgement record: every item below `ackedSeq` was delivered. */
export function encodeAckRecord(ackedSeq: number): Uint8Array {
  return encodeFrame(
    new Uint8Array(0),
    { flags: FrameFlag.ACK, keyId: 0, firstSeq: ackedSeq, count: 0 },
    ACK_RECORD_VERSION,
  )
}

/** Whether a checked header is an acknowledgement record (its `firstSeq`: the acknowledged sequence number). */
export function isAckRecord(header: FrameHeader): boolean {
  return (header.flags & FrameFlag.ACK) !== 0
}

import { gunzipSync, zstdDecompressSync } from 'node:zlib'

/**
 * Checksums and decompressors the stand-in uses to check what the client
 * sends, written from the format specs (not taken from the client, whose own
 * codecs would decode their own mistakes):
 *
 * - CRC-32C (Castagnoli), which covers a record batch from `attributes` on.
 * - snappy raw blocks (https://github.com/google/snappy/blob/main/format_description.txt),
 *   and the xerial framing the Java client writes (`\x82SNAPPY\0` + int32 blocks).
 * - LZ4 frames (https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md),
 *   header, block and content checksums verified (xxHash32).
 * - gzip and zstd through node:zlib.
 */

const CRC32C_TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1
    t[n] = c >>> 0
  }
  return t
})()

export function crc32c(buf: Uint8Array): number {
  let crc = 0xffffffff
  for (let i = 0; i < buf.length; i++) crc = CRC32C_TABLE[(crc ^ buf[i]!) & 0xff]! ^ (crc >>> 8)
  return (crc ^ 0xffffffff) >>> 0
}

const P1 = 2654435761
const P2 = 2246822519
const P3 = 3266489917
const P4 = 668265263
const P5 = 374761393

const rotl = (x: number, r: number): number => ((x << r) | (x >>> (32 - r))) >>> 0
const le32 = (b: Uint8Array, i: number): number =>
  (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0
const round = (acc: number, input: number): number =>
  Math.imul(rotl((acc + Math.imul(input, P2)) >>> 0, 13), P1) >>> 0

/** xxHash32 with seed 0 (LZ4 frame checksums). */
export function xxh32(b: Uint8Array): number {
  const len = b.length
  let i = 0
  let h: number
  if (len >= 16) {
    let v1 = (P1 + P2) >>> 0
    let v2 = P2
    let v3 = 0
    let v4 = (0 - P1) >>> 0
    while (i <= len - 16) {
      v1 = round(v1, le32(b, i))
      v2 = round(v2, le32(b, i + 4))
      v3 = round(v3, le32(b, i + 8))
      v4 = round(v4, le32(b, i + 12))
      i += 16
    }
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) >>> 0
  } else {
    h = P5
  }
  h = (h + len) >>> 0
  for (; i + 4 <= len; i += 4) h = Math.imul(rotl((h + Math.imul(le32(b, i), P3)) >>> 0, 17), P4) >>> 0
  for (; i < len; i++) h = Math.imul(rotl((h + Math.imul(b[i]!, P5)) >>> 0, 11), P1) >>> 0
  h = Math.imul(h ^ (h >>> 15), P2) >>> 0
  h = Math.imul(h ^ (h >>> 13), P3) >>> 0
  return (h ^ (h >>> 16)) >>> 0
}

/** A byte sink that grows; copies may overlap their own output (LZ77 matches). */
class Output {
  buf: Buffer
  len = 0
  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(Math.max(64, capacity))
  }
  #reserve(n: number): void {
    if (this.len + n <= this.buf.length) return
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n))
    this.buf.copy(next, 0, 0, this.len)
    this.buf = next
  }
  literal(src: Uint8Array, start: number, n: number): void {
    if (start + n > src.length) throw new RangeError('literal runs past the input')
    this.#reserve(n)
    this.buf.set(src.subarray(start, start + n), this.len)
    this.len += n
  }
  match(offset: number, n: number): void {
    if (offset <= 0 || offset > this.len) throw new RangeError(`bad match offset ${offset} at ${this.len}`)
    this.#reserve(n)
    for (let k = 0; k < n; k++) this.buf[this.len + k] = this.buf[this.len - offset + k]!
    this.len += n
  }
  result(): Buffer {
    return this.buf.subarray(0, this.len)
  }
}

/** One raw snappy block. */
function snappyBlock(src: Uint8Array): Buffer {
  let pos = 0
  let expected = 0
  for (let shift = 0; ; shift += 7) {
    const b = src[pos++]
    if (b === undefined) throw new RangeError('snappy: truncated length')
    expected += (b & 0x7f) * 2 ** shift
    if ((b & 0x80) === 0) break
  }
  const out = new Output(expected)
  while (pos < src.length) {
    const tag = src[pos++]!
    switch (tag & 3) {
      case 0: {
        let n = tag >>> 2
        if (n >= 60) {
          const extra = n - 59
          n = 0
          for (let k = 0; k < extra; k++) n += src[pos + k]! * 2 ** (8 * k)
          pos += extra
        }
        out.literal(src, pos, n + 1)
        pos += n + 1
        break
      }
      case 1:
        out.match(((tag >>> 5) << 8) | src[pos]!, ((tag >>> 2) & 7) + 4)
        pos += 1
        break
      case 2:
        out.match(src[pos]! | (src[pos + 1]! << 8), (tag >>> 2) + 1)
        pos += 2
        break
      default:
        out.match(le32(src, pos), (tag >>> 2) + 1)
        pos += 4
    }
  }
  if (out.len !== expected) throw new RangeError(`snappy: expected ${expected} bytes, got ${out.len}`)
  return out.result()
}

const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00])

export function snappyDecompress(src: Buffer): Buffer {
  if (src.length >= 16 && src.subarray(0, 8).equals(XERIAL_MAGIC)) {
    const parts: Buffer[] = []
    for (let pos = 16; pos < src.length; ) {
      const n = src.readInt32BE(pos)
      parts.push(snappyBlock(src.subarray(pos + 4, pos + 4 + n)))
      pos += 4 + n
    }
    return Buffer.concat(parts)
  }
  return snappyBlock(src)
}

/** Decodes one LZ4 block, appending to `out` (linked blocks may refer back into it). */
function lz4Block(src: Uint8Array, out: Output): void {
  let ip = 0
  while (ip < src.length) {
    const token = src[ip++]!
    let lit = token >>> 4
    if (lit === 15) {
      let b: number
      do {
        b = src[ip++]!
        lit += b
      } while (b === 255)
    }
    out.literal(src, ip, lit)
    ip += lit
    if (ip >= src.length) break // the last sequence has literals only
    const offset = src[ip]! | (src[ip + 1]! << 8)
    ip += 2
    let n = token & 15
    if (n === 15) {
      let b: number
      do {
        b = src[ip++]!
        n += b
      } while (b === 255)
    }
    out.match(offset, n + 4)
  }
}

export function lz4Decompress(src: Buffer): Buffer {
  if (src.readUInt32LE(0) !== 0x184d2204) throw new RangeError('lz4: not an LZ4 frame (bad magic)')
  const flg = src[4]!
  if (flg >>> 6 !== 1) throw new RangeError(`lz4: frame version ${flg >>> 6}`)
  const blockChecksum = (flg & 0x10) !== 0
  const contentSize = (flg & 0x08) !== 0
  const contentChecksum = (flg & 0x04) !== 0
  const dictId = (flg & 0x01) !== 0
  let pos = 6 + (contentSize ? 8 : 0) + (dictId ? 4 : 0)
  // KIP-57: the header checksum covers the descriptor without the magic.
  const hc = (xxh32(src.subarray(4, pos)) >>> 8) & 0xff
  if (src[pos] !== hc) throw new RangeError(`lz4: header checksum ${src[pos]} != ${hc}`)
  pos++
  const out = new Output(src.length * 4)
  for (;;) {
    const word = src.readUInt32LE(pos)
    pos += 4
    if (word === 0) break
    const size = word & 0x7fffffff
    const block = src.subarray(pos, pos + size)
    pos += size
    if (blockChecksum) {
      if (src.readUInt32LE(pos) !== xxh32(block)) throw new RangeError('lz4: block checksum mismatch')
      pos += 4
    }
    if (word & 0x80000000) out.literal(block, 0, size)
    else lz4Block(block, out)
  }
  const content = out.result()
  if (contentChecksum && src.readUInt32LE(pos) !== xxh32(content)) {
    throw new RangeError('lz4: content checksum mismatch')
  }
  return content
}

/** Record-batch `attributes & 7` → codec name. */
export const CODECS: readonly string[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd']

export function decompress(codec: number, data: Buffer): Buffer {
  switch (codec) {
    case 0:
      return data
    case 1:
      return gunzipSync(data)
    case 2:
      return snappyDecompress(data)
    case 3:
      return lz4Decompress(data)
    case 4:
      return zstdDecompressSync(data)
    default:
      throw new RangeError(`unknown compression codec ${codec}`)
  }
}

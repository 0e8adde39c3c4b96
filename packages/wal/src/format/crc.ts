import { createRequire } from 'node:module'

/**
 * CRC32C (Castagnoli), the checksum of every frame, record and control file.
 *
 * Payloads go to @node-rs/crc32: native SIMD (`node:zlib` only has the IEEE
 * polynomial), and a worker thread that loaded it can exit safely (checked:
 * 20 load-and-exit cycles, with and without the main thread having loaded
 * it; the crash on thread exit is a @napi-rs/snappy 1.0.2 bug, not one of
 * this package).
 *
 * Loading it costs a fresh thread 2–4 ms (its napi-rs loader, then dlopen;
 * note `start.crc_lazy` in packages/bench/README.md), more than the first
 * checksums it would compute. So inputs of at most SMALL_BYTES (frame
 * headers, acknowledgement records, the watermark and clean-close files)
 * are always computed here from slice-by-8 tables, and so are larger ones
 * until a thread has checksummed JS_BUDGET_BYTES of them; then the addon is
 * loaded. Opening a log — new, cleanly closed, crashed with its last
 * segment walked (one payload checked) or scanned (a small one) — stays
 * within that budget, so `start()` does not load the addon (note
 * `start.crc_once`); the first appends load it.
 */
export const SMALL_BYTES = 256

/** Payload bytes a thread checksums in JavaScript before it loads the addon (64 KiB take the tables 0.7–2 ms in a fresh thread). */
const JS_BUDGET_BYTES = 256 * 1024

type NativeCrc = (input: Uint8Array, initialState?: number) => number
let native: NativeCrc | undefined
let jsBudget = JS_BUDGET_BYTES
/** Slice-by-8 tables: 8 × 256 entries, table k for a byte k positions before the end of an 8-byte step. */
let tables: Uint32Array | undefined

function makeTables(): Uint32Array {
  const t = new Uint32Array(8 * 256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
    t[n] = c >>> 0
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff]! ^ (c >>> 8)
      t[k * 256 + n] = c >>> 0
    }
  }
  return t
}

/** CRC32C in JavaScript, eight bytes per step (exported for the tests: crc32c picks it or the addon). */
export function tableCrc(bytes: Uint8Array, offset: number, length: number): number {
  const t = (tables ??= makeTables())
  let c = 0xffffffff
  let i = offset
  const end = offset + length
  for (const end8 = end - (length & 7); i < end8; i += 8) {
    const a = (c ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24))) >>> 0
    c =
      t[1792 + (a & 0xff)]! ^
      t[1536 + ((a >>> 8) & 0xff)]! ^
      t[1280 + ((a >>> 16) & 0xff)]! ^
      t[1024 + (a >>> 24)]! ^
      t[768 + bytes[i + 4]!]! ^
      t[512 + bytes[i + 5]!]! ^
      t[256 + bytes[i + 6]!]! ^
      t[bytes[i + 7]!]!
  }
  for (; i < end; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

/** CRC32C of `length` bytes of `bytes` from `offset` (default: all of them). */
export function crc32c(bytes: Uint8Array, offset = 0, length: number = bytes.byteLength - offset): number {
  if (length <= SMALL_BYTES) return tableCrc(bytes, offset, length)
  if (!native && length <= jsBudget) {
    jsBudget -= length
    return tableCrc(bytes, offset, length)
  }
  native ??= (createRequire(import.meta.url)('@node-rs/crc32') as { crc32c: NativeCrc }).crc32c
  return native(new Uint8Array(bytes.buffer, bytes.byteOffset + offset, length))
}

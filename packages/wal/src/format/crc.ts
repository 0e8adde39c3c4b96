import { createRequire } from 'node:module'

/**
 * CRC32C (Castagnoli), the checksum of every frame, record and control file.
 *
 * Payloads go to @node-rs/crc32: native SIMD (`node:zlib` only has the IEEE
 * polynomial), and a worker thread that loaded it can exit safely (checked:
 * 20 load-and-exit cycles, with and without the main thread having loaded
 * it; the crash on thread exit is a @napi-rs/snappy 1.0.2 bug, not one of
 * this package). It is loaded on first use.
 *
 * Inputs of at most SMALL_BYTES (frame headers, acknowledgement records, the
 * watermark and clean-close files) are computed here from a table: at that
 * size faster than a call into the addon, and opening a new or cleanly
 * closed log checks nothing larger. So such an open does not load the addon
 * (its loader and dlopen cost a fresh thread about 2.5 ms, note
 * `start.crc_lazy` in packages/bench/README.md); the first append does.
 */
export const SMALL_BYTES = 256

type NativeCrc = (input: Uint8Array, initialState?: number) => number
let native: NativeCrc | undefined
let table: Uint32Array | undefined

function makeTable(): Uint32Array {
  const t = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
    t[n] = c >>> 0
  }
  return t
}

/** CRC32C of `length` bytes of `bytes` from `offset` (default: all of them). */
export function crc32c(bytes: Uint8Array, offset = 0, length: number = bytes.byteLength - offset): number {
  if (length > SMALL_BYTES) {
    native ??= (createRequire(import.meta.url)('@node-rs/crc32') as { crc32c: NativeCrc }).crc32c
    return native(new Uint8Array(bytes.buffer, bytes.byteOffset + offset, length))
  }
  const t = (table ??= makeTable())
  let c = 0xffffffff
  for (let i = offset, end = offset + length; i < end; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

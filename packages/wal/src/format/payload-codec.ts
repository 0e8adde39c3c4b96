import { createRequire } from 'node:module'
import { WalError, WalErrorCodes } from '../errors.ts'
import { FrameFlag, type FrameHeader } from './frame.ts'

/**
 * snappy's native module (with node-gyp-build and detect-libc) is slow to
 * load next to everything else a log does at open: loaded on first use, so a
 * log without compression never pays for it.
 */
let snappy: typeof import('snappy') | undefined
function codec(): typeof import('snappy') {
  snappy ??= createRequire(import.meta.url)('snappy') as typeof import('snappy')
  return snappy
}

/** node:crypto, loaded on first use: a log that is not encrypted never needs it (about 3 ms of a thread's start-up). */
const nodeCrypto = (): typeof import('node:crypto') => process.getBuiltinModule('node:crypto')

/**
 * What a frame's payload is on disk: the caller's bytes, optionally snappy
 * compressed, then optionally AES-256-GCM encrypted.
 *
 *   encrypted payload:  | nonce (12 B) | ciphertext | GCM tag (16 B) |
 *
 * Compression is skipped for a frame it does not shrink (flag unset). The
 * nonce is 96 random bits per frame (unique with overwhelming probability
 * for up to 2^32 frames per key — rotate keys well before that), and the
 * frame's first sequence number, count and key id are authenticated as
 * additional data: a frame copied to another place in the log fails too.
 *
 * snappy is the maintained `snappy` 7.x with `copyOutputData: true`, not
 * `@napi-rs/snappy` 1.0.2: that release crashes the process when a worker
 * that loaded it exits (upstream Brooooooklyn/snappy#83), and its external
 * buffers are only freed when the thread returns to its event loop (the
 * package README, "Compression and encryption", says how this was checked).
 */
export interface PayloadCodecOptions {
  /** Compress frames with snappy when it pays. Default false. */
  readonly compression?: boolean
  /** AES-256-GCM: frames are written with `keyId`; `keys` may hold older ids to read old frames. */
  readonly encryption?: {
    readonly keyId: number
    readonly keys: Readonly<Record<number, Uint8Array>>
  }
}

const NONCE_BYTES = 12
const TAG_BYTES = 16

function aad(header: Pick<FrameHeader, 'firstSeq' | 'count' | 'keyId'>): Buffer {
  const b = Buffer.alloc(16)
  b.writeBigUInt64LE(BigInt(header.firstSeq), 0)
  b.writeUInt32LE(header.count, 8)
  b.writeUInt32LE(header.keyId, 12)
  return b
}

/** Validates codec options at open (every key 32 bytes, the write key present). */
export function checkCodecOptions(options: PayloadCodecOptions): void {
  const enc = options.encryption
  if (!enc) return
  if (!Number.isInteger(enc.keyId) || enc.keyId < 0 || enc.keyId > 0xffff) {
    throw new WalError(
      WalErrorCodes.USAGE,
      `encryption.keyId must be an integer from 0 to 65535 (got ${enc.keyId})`,
    )
  }
  for (const [id, key] of Object.entries(enc.keys)) {
    if (!(key instanceof Uint8Array) || key.byteLength !== 32) {
      throw new WalError(WalErrorCodes.USAGE, `encryption.keys[${id}] must be 32 bytes (AES-256)`)
    }
  }
  if (!enc.keys[enc.keyId]) throw new WalError(WalErrorCodes.USAGE, `encryption.keys has no key ${enc.keyId}`)
}

/** Turns the caller's bytes into a frame payload; returns it with the frame's flags and key id. */
export function encodePayload(
  plain: Uint8Array,
  frame: { firstSeq: number; count: number },
  options: PayloadCodecOptions,
): { payload: Uint8Array; flags: number; keyId: number } {
  let payload = plain
  let flags = 0
  if (options.compression && plain.byteLength > 0) {
    const compressed = codec().compressSync(Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength), {
      copyOutputData: true,
    })
    if (compressed.byteLength < plain.byteLength) {
      payload = compressed
      flags |= FrameFlag.COMPRESSED
    }
  }
  const enc = options.encryption
  if (!enc) return { payload, flags, keyId: 0 }
  const { createCipheriv, randomBytes } = nodeCrypto()
  const nonce = randomBytes(NONCE_BYTES)
  const cipher = createCipheriv('aes-256-gcm', enc.keys[enc.keyId]!, nonce)
  cipher.setAAD(aad({ ...frame, keyId: enc.keyId }))
  const body = Buffer.concat([nonce, cipher.update(payload), cipher.final(), cipher.getAuthTag()])
  return { payload: body, flags: flags | FrameFlag.ENCRYPTED, keyId: enc.keyId }
}

/** The caller's bytes back from a frame payload. @throws WalError DECRYPT / KEY_MISSING. */
export function decodePayload(
  payload: Uint8Array,
  header: FrameHeader,
  options: PayloadCodecOptions,
): Uint8Array {
  let body = payload
  if (header.flags & FrameFlag.ENCRYPTED) {
    const key = options.encryption?.keys[header.keyId]
    if (!key) {
      throw new WalError(
        WalErrorCodes.KEY_MISSING,
        `Frame at sequence ${header.firstSeq} is encrypted with key ${header.keyId}, which was not given`,
      )
    }
    if (payload.byteLength < NONCE_BYTES + TAG_BYTES) {
      throw new WalError(
        WalErrorCodes.DECRYPT,
        `Frame at sequence ${header.firstSeq} is too short to be encrypted`,
      )
    }
    const buf = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
    try {
      const decipher = nodeCrypto().createDecipheriv('aes-256-gcm', key, buf.subarray(0, NONCE_BYTES))
      decipher.setAAD(aad(header))
      decipher.setAuthTag(buf.subarray(buf.byteLength - TAG_BYTES))
      body = Buffer.concat([
        decipher.update(buf.subarray(NONCE_BYTES, buf.byteLength - TAG_BYTES)),
        decipher.final(),
      ])
    } catch (cause) {
      throw new WalError(
        WalErrorCodes.DECRYPT,
        `Frame at sequence ${header.firstSeq} failed authentication: wrong key ${header.keyId} or a tampered frame`,
        { cause },
      )
    }
  }
  if (header.flags & FrameFlag.COMPRESSED) {
    return codec().uncompressSync(Buffer.from(body.buffer, body.byteOffset, body.byteLength), {
      asBuffer: true,
      copyOutputData: true,
    }) as Buffer
  }
  return body
}

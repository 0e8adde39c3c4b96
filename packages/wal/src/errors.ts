/**
 * Errors of @vinequeue/wal: one class, a stable `code` per failure, the
 * underlying cause kept, a `Symbol.for` brand for cross-copy instance checks.
 */
export const WalErrorCodes = {
  /** An I/O call failed (ENOSPC, EIO, …); `cause` holds the system error. */
  IO: 'VQ_WAL_IO',
  /** The directory holds something that is not a VineQueue WAL, or a newer format. */
  FORMAT: 'VQ_WAL_FORMAT',
  /** An argument the WAL cannot take (empty payload, bad count, closed log). */
  USAGE: 'VQ_WAL_USAGE',
  /** A frame failed authentication: the wrong key, or the frame was tampered with. */
  DECRYPT: 'VQ_WAL_DECRYPT',
  /** A frame is encrypted with a key id the WAL was not given. */
  KEY_MISSING: 'VQ_WAL_KEY_MISSING',
  /**
   * Part of the log cannot be read — a damaged region, a frame failing
   * authentication among good ones, misplaced frames, a gap in sequence
   * numbers, a stray file: its items are lost; its bytes are kept in the
   * log's `quarantine/` folder.
   */
  DAMAGED: 'VQ_WAL_DAMAGED',
  /** The directory is open in a live WriteAheadLog (another process, or another thread or queue of this one). */
  LOCKED: 'VQ_WAL_LOCKED',
} as const

export type WalErrorCode = (typeof WalErrorCodes)[keyof typeof WalErrorCodes]

const kBrand: unique symbol = Symbol.for('vinequeue.wal.error')

export class WalError extends Error {
  readonly code: WalErrorCode

  constructor(code: WalErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = 'WalError'
    Object.defineProperty(this, kBrand, { value: true })
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kBrand] === true
  }
}

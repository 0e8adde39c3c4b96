/**
 * Errors of @vinequeue/wal: one class, a stable `code` per failure, the
 * underlying cause kept, a `Symbol.for` brand for cross-copy instance checks.
 */
export const WalErrorCodes = {
  /** An I/O call failed (ENOSPC, EIO, …); `cause` holds the system error. */
  IO: 'VQ_WAL_IO',
  /** An argument or option the WAL cannot take (a bad count, a bad key), or a call it cannot take now (a second ackAsync while one runs). */
  USAGE: 'VQ_WAL_USAGE',
  /** The log was closed: nothing can be appended, synced, acknowledged or read through it any more. */
  CLOSED: 'VQ_WAL_CLOSED',
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

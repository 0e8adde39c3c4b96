import { WalError, WalErrorCodes } from '@vinequeue/wal'
import { describe, expect, it } from 'vitest'

describe('WalError', () => {
  it('has one stable code per failure, the name WalError, the cause kept, and a brand that survives a rebuilt copy', () => {
    expect(Object.values(WalErrorCodes).sort()).toEqual([
      'VQ_WAL_CLOSED',
      'VQ_WAL_DAMAGED',
      'VQ_WAL_DECRYPT',
      'VQ_WAL_IO',
      'VQ_WAL_KEY_MISSING',
      'VQ_WAL_LOCKED',
      'VQ_WAL_USAGE',
    ])
    const cause = Object.assign(new Error('EIO: i/o error'), { code: 'EIO' })
    for (const code of Object.values(WalErrorCodes)) {
      const err = new WalError(code, 'message', { cause })
      expect(err).toBeInstanceOf(Error)
      expect(err).toBeInstanceOf(WalError)
      expect(err.name).toBe('WalError')
      expect(err.code).toBe(code)
      expect(err.cause).toBe(cause)
    }
    // (An instance from another copy of the package carries the same Symbol.for brand.)
    const foreign = Object.assign(new Error('x'), { [Symbol.for('vinequeue.wal.error')]: true })
    expect(foreign).toBeInstanceOf(WalError)
    expect(new Error('plain')).not.toBeInstanceOf(WalError)
  })
})

import { describe, expect, it } from 'vitest'
import { isBackPressure, splitOutcome } from '../../src/pipeline/outcome-split.ts'

describe('outcome splitter', () => {
  it('a batch with no failures is delivered', () => {
    expect(splitOutcome(3, undefined, undefined)).toEqual({ kind: 'delivered' })
    expect(splitOutcome(3, [], undefined)).toEqual({ kind: 'delivered' })
  })

  it('an error fails the whole batch: retried unless it is not retryable', () => {
    expect(splitOutcome(3, undefined, { name: 'SendError', message: 'HTTP 503', retryAfterMs: 250 })).toEqual(
      { kind: 'failed', permanent: false, reason: 'SendError: HTTP 503', retryAfterMs: 250 },
    )
    expect(splitOutcome(3, undefined, { name: 'SendError', message: 'HTTP 400', retryable: false })).toEqual({
      kind: 'failed',
      permanent: true,
      reason: 'permanent failure: HTTP 400',
      retryAfterMs: undefined,
    })
  })

  it('splits failed items into delivered, dead letters per distinct reason and retries, in index order', () => {
    const split = splitOutcome(
      6,
      [
        { index: 4, retryable: false, reason: 'bad field' },
        { index: 3, reason: 'busy', retryAfterMs: 100 },
        { index: 0, retryable: false, reason: 'too big' },
        { index: 1, retryable: false, reason: 'bad field' },
        { index: 5, retryAfterMs: 400 },
      ],
      undefined,
    )
    expect(split).toEqual({
      kind: 'partial',
      delivered: 1,
      deadLetters: [
        { reason: 'permanent failure: too big', indexes: [0] },
        { reason: 'permanent failure: bad field', indexes: [1, 4] },
      ],
      retry: [3, 5],
      retryReason: 'busy',
      retryAfterMs: 400,
    })
  })

  it('a repeated index counts once, with its last entry', () => {
    const split = splitOutcome(
      2,
      [
        { index: 0, retryable: false, reason: 'first' },
        { index: 0, reason: 'second' },
      ],
      undefined,
    )
    expect(split).toMatchObject({
      kind: 'partial',
      delivered: 1,
      deadLetters: [],
      retry: [0],
      retryReason: 'second',
    })
  })

  it('names missing reasons and ignores negative retryAfterMs', () => {
    const split = splitOutcome(
      3,
      [
        { index: 0, retryable: false },
        { index: 2, retryAfterMs: -5 },
      ],
      undefined,
    )
    expect(split).toEqual({
      kind: 'partial',
      delivered: 1,
      deadLetters: [{ reason: 'permanent failure: rejected by the sender', indexes: [0] }],
      retry: [2],
      retryReason: 'item failed',
      retryAfterMs: undefined,
    })
  })

  it('only permanent failures: nothing retries', () => {
    expect(splitOutcome(2, [{ index: 1, retryable: false, reason: 'no' }], undefined)).toMatchObject({
      kind: 'partial',
      delivered: 1,
      retry: [],
    })
  })

  it('back pressure: a retryable whole-batch failure, or items refused with 429/503', () => {
    expect(isBackPressure(undefined, undefined)).toBe(false)
    expect(isBackPressure(undefined, { name: 'E', message: 'm' })).toBe(true)
    expect(isBackPressure(undefined, { name: 'E', message: 'm', retryable: false })).toBe(false)
    expect(isBackPressure([{ index: 0, status: 429 }], undefined)).toBe(true)
    expect(isBackPressure([{ index: 0, status: 503 }], undefined)).toBe(true)
    expect(isBackPressure([{ index: 0, status: 503, retryable: false }], undefined)).toBe(false)
    expect(isBackPressure([{ index: 0, status: 500 }], undefined)).toBe(false)
  })
})

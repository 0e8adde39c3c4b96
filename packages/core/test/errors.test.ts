import {
  BackpressureError,
  CircuitOpenError,
  DeadLetterFileError,
  EncodeError,
  ErrorCodes,
  InvalidArgumentError,
  InvalidConfigError,
  InvalidSendResultError,
  ItemDecodeError,
  ItemTooLargeError,
  isVineQueueError,
  NotStartedError,
  PipelineDownError,
  QueueClosedError,
  QueueFullError,
  SendError,
  SenderLoadError,
  SendTimeoutError,
  StartTimeoutError,
  VineQueueError,
} from '@vinequeue/core'
import { describe, expect, it } from 'vitest'

describe('errors', () => {
  const table = [
    [QueueClosedError, 'QueueClosedError', ErrorCodes.QUEUE_CLOSED],
    [QueueFullError, 'QueueFullError', ErrorCodes.QUEUE_FULL],
    [BackpressureError, 'BackpressureError', ErrorCodes.BACKPRESSURE],
    [CircuitOpenError, 'CircuitOpenError', ErrorCodes.CIRCUIT_OPEN],
    [ItemTooLargeError, 'ItemTooLargeError', ErrorCodes.ITEM_TOO_LARGE],
    [EncodeError, 'EncodeError', ErrorCodes.ENCODE],
    [InvalidConfigError, 'InvalidConfigError', ErrorCodes.INVALID_CONFIG],
    [SendError, 'SendError', ErrorCodes.SEND_FAILED],
    [SendTimeoutError, 'SendTimeoutError', ErrorCodes.SEND_TIMEOUT],
    [PipelineDownError, 'PipelineDownError', ErrorCodes.PIPELINE_DOWN],
    [NotStartedError, 'NotStartedError', ErrorCodes.NOT_STARTED],
    [StartTimeoutError, 'StartTimeoutError', ErrorCodes.START_TIMEOUT],
    [SenderLoadError, 'SenderLoadError', ErrorCodes.SENDER_LOAD],
    [DeadLetterFileError, 'DeadLetterFileError', ErrorCodes.DEAD_LETTER_FILE],
    [InvalidSendResultError, 'InvalidSendResultError', ErrorCodes.INVALID_SEND_RESULT],
    [ItemDecodeError, 'ItemDecodeError', ErrorCodes.DECODE],
    [InvalidArgumentError, 'InvalidArgumentError', ErrorCodes.INVALID_ARGUMENT],
  ] as const

  it.each(table)('%o has a stable name and code', (Cls, name, code) => {
    const err = new Cls('boom', { cause: new Error('root') })
    expect(err.name).toBe(name)
    expect(err.code).toBe(code)
    expect(err.message).toBe('boom')
    expect((err.cause as Error).message).toBe('root')
    expect(err).toBeInstanceOf(Error)
    expect(err).toBeInstanceOf(Cls)
    expect(err).toBeInstanceOf(VineQueueError)
    expect(isVineQueueError(err)).toBe(true)
  })

  it('instanceof tells the classes apart', () => {
    expect(new QueueFullError('x')).not.toBeInstanceOf(QueueClosedError)
    expect(new Error('x')).not.toBeInstanceOf(QueueFullError)
  })

  it('instanceof holds for an error that crossed a thread (structured clone loses the class)', () => {
    const err = new QueueFullError('x')
    // What another copy of the package would create: same brand, same code.
    const foreign = Object.assign(new Error('x'), { code: err.code })
    Object.defineProperty(foreign, Symbol.for('vinequeue.error'), { value: true })
    expect(foreign).toBeInstanceOf(QueueFullError)
    expect(foreign).not.toBeInstanceOf(QueueClosedError)
  })

  it('keeps extra fields', () => {
    const err = new SendError('bad request', { retryable: false, status: 400 })
    expect(err.retryable).toBe(false)
    expect(err.status).toBe(400)
    const big = new ItemTooLargeError('big', { size: 10, limit: 5 })
    expect(big.size).toBe(10)
    expect(big.limit).toBe(5)
  })
})

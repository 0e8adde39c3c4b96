export { Batch } from '../batch/batch-format.ts'
export { ItemDecodeError, SendError } from '../errors.ts'
export type { ItemFailure, SendContext, Sender, SenderFactory, SendResult } from './types.ts'
export { defineSender } from './types.ts'

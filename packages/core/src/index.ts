export type { BatchEntry } from './batch/batch-format.ts'
export { Batch, UndecodableItem } from './batch/batch-format.ts'
export { channels } from './diagnostics.ts'
export type { ErrorCode } from './errors.ts'
export {
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
} from './errors.ts'
export type { ProducerHandle, ProducerLimits } from './producer/handle.ts'
export { connectProducer, Producer } from './producer/producer.ts'
export { presets } from './queue/presets.ts'
export { createQueue, Queue } from './queue/queue.ts'
export type {
  AdaptiveBatchingOptions,
  AdaptiveConcurrencyOptions,
  CircuitBreakerOptions,
  CircuitState,
  DeadLetter,
  EnqueueAsyncOptions,
  FullPolicy,
  Health,
  HealthStatus,
  LatencyHistogram,
  LatencyHistograms,
  Metrics,
  PresetName,
  QueueEvents,
  QueueOptions,
  ResolvedOptions,
  ResolvedWalOptions,
  SenderModuleSpec,
  StopReport,
  WalFullPolicy,
  WalQueueOptions,
} from './queue/types.ts'
export type { ItemFailure, SendContext, Sender, SenderFactory, SendResult } from './sender/types.ts'
export { defineSender } from './sender/types.ts'

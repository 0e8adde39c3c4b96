import type { PresetName, QueueOptions } from './types.ts'

type PresetOptions = Omit<QueueOptions, 'preset' | 'send' | 'sender' | 'onDeadLetter'>

/**
 * Named profiles. `default` mirrors the seed's DefaultConfig() (1000 items or
 * 5 s per batch); `highThroughput` its V4Config() (large adaptive batches,
 * compression-friendly, bigger ring); `lowLatency` sends small batches within
 * a few milliseconds.
 */
export const presets: Readonly<Record<PresetName, Readonly<PresetOptions>>> = Object.freeze({
  default: Object.freeze({
    maxBatchSize: 1000,
    maxBatchBytes: 1024 * 1024,
    flushIntervalMs: 5000,
    ringBytes: 32 * 1024 * 1024,
  }),
  highThroughput: Object.freeze({
    maxBatchSize: 5000,
    maxBatchBytes: 4 * 1024 * 1024,
    flushIntervalMs: 1000,
    ringBytes: 64 * 1024 * 1024,
    adaptiveBatching: { minBatchSize: 100, maxBatchSize: 5000, targetLatencyMs: 100 },
  }),
  lowLatency: Object.freeze({
    maxBatchSize: 100,
    maxBatchBytes: 256 * 1024,
    flushIntervalMs: 5,
    ringBytes: 16 * 1024 * 1024,
  }),
})

import type { PresetName, QueueOptions } from './types.ts'

type PresetOptions = Omit<QueueOptions, 'preset' | 'send' | 'sender' | 'onDeadLetter'>

/**
 * Named profiles. `default` mirrors the Go VineQueue's DefaultConfig() (1000 items or
 * 5 s per batch); `highThroughput` its V4Config() (large adaptive batches,
 * compression-friendly, bigger ring); `lowLatency` sends small batches within
 * a few milliseconds.
 *
 * Lane sizes stay within this machine's 16 MiB L3 on purpose: measured with
 * the pipeline draining concurrently (and the producer still copying each
 * item in), enqueue ran at 0.84× msgpackr.pack with 8–16 MiB lanes, 0.69×
 * with 32 MiB and 0.63× with 256 MiB — a lane larger than the cache makes
 * every record a trip to DRAM for both threads. Bigger
 * lanes absorb longer bursts; with the WAL, overflow spills to disk instead.
 */
export const presets: Readonly<Record<PresetName, Readonly<PresetOptions>>> = Object.freeze({
  default: Object.freeze({
    maxBatchSize: 1000,
    maxBatchBytes: 1024 * 1024,
    flushIntervalMs: 5000,
    ringBytes: 8 * 1024 * 1024,
  }),
  highThroughput: Object.freeze({
    maxBatchSize: 5000,
    maxBatchBytes: 4 * 1024 * 1024,
    flushIntervalMs: 1000,
    ringBytes: 16 * 1024 * 1024,
    adaptiveBatching: { minBatchSize: 100, maxBatchSize: 5000, targetLatencyMs: 100 },
  }),
  lowLatency: Object.freeze({
    maxBatchSize: 100,
    maxBatchBytes: 256 * 1024,
    flushIntervalMs: 5,
    ringBytes: 4 * 1024 * 1024,
  }),
})

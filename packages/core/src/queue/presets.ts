import type { PresetName, QueueOptions } from './types.ts'

type PresetOptions = Omit<QueueOptions, 'preset' | 'send' | 'sender' | 'onDeadLetter'>

/**
 * Named profiles. `default`: up to 1000 items or 5 s per batch;
 * `highThroughput`: large adaptive batches, compression-friendly, a bigger
 * ring; `lowLatency`: small batches sent within a few milliseconds.
 *
 * Lane sizes stay within a typical L3 cache (16 MiB) on purpose: a lane
 * larger than the cache makes every record a trip to DRAM for both threads,
 * and enqueue slowed as lanes grew past it (note `lane.size` in
 * packages/bench/README.md). Bigger
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

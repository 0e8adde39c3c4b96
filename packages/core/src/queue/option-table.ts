/**
 * The queue's options as data: one table per options object (key, check,
 * default, which thread needs it, doc). options.ts derives from them the
 * validation (checkRows), the known keys, the defaults (defaultsOf) and the
 * pipeline thread's config keys (PIPELINE_OPTION_KEYS).
 */
import { availableParallelism } from 'node:os'
// The defaults module alone: resolving options must not load the log on the queue's thread.
import { DEFAULT_SEGMENT_BYTES } from '@vinequeue/wal/defaults'
import { type ConfigCheck, describeValue } from '../config/config-check.ts'
import { MAX_LANE_CAPACITY } from '../ring/layout.ts'
import type {
  AdaptiveBatchingOptions,
  AdaptiveConcurrencyOptions,
  CircuitBreakerOptions,
  FullPolicy,
  QueueOptions,
  WalQueueOptions,
} from './types.ts'

/** How a value is checked. `custom`: by code in resolveOptions (the row's doc says what it takes). */
export type OptionCheck =
  | {
      readonly kind: 'integer'
      readonly min: number
      /** Absent: any integer ≥ min. */
      readonly max?: number
      /** Infinity is also taken (no limit). */
      readonly orInfinity?: true
    }
  /** A finite number from min to max (max Infinity: any finite one ≥ min). */
  | { readonly kind: 'number'; readonly min: number; readonly max: number }
  /** A number in an interval whose ends may be open: `(0, 1]`. */
  | { readonly kind: 'interval'; readonly min: number; readonly max: number; readonly open: 'min' | 'both' }
  | { readonly kind: 'boolean' }
  | { readonly kind: 'oneOf'; readonly values: readonly string[] }
  | { readonly kind: 'custom' }

/** One option. */
export interface OptionRow {
  readonly check: OptionCheck
  /** The default; absent: none (the option is optional, or derived from others: see doc). */
  readonly default?: unknown
  readonly doc: string
}

/** The options the pipeline thread takes (PipelineConfig); every other option stays on the queue's thread. */
export type PipelineOptionKey =
  | 'maxBatchSize'
  | 'maxBatchBytes'
  | 'maxItemBytes'
  | 'flushIntervalMs'
  | 'adaptiveBatching'
  | 'adaptiveConcurrency'
  | 'softLimit'
  | 'hardLimit'
  | 'senderThreads'
  | 'senderConcurrency'
  | 'maxInFlightBatches'
  | 'sendTimeoutMs'
  | 'maxAttempts'
  | 'retryInitialDelayMs'
  | 'retryMaxDelayMs'
  | 'sender'
  | 'wal'
  | 'maxRetryAgeMs'
  | 'circuitBreaker'
  | 'deadLetterFile'

/** A row of the queue's table: the type checker holds `pipeline` equal to PipelineOptionKey. */
export type QueueOptionRow<K extends keyof QueueOptions> = OptionRow & {
  readonly pipeline: K extends PipelineOptionKey ? true : false
}

const DAY_MS = 24 * 3600 * 1000
const FULL_POLICIES: readonly FullPolicy[] = ['block', 'reject', 'dropNewest', 'dropOldest', 'spill']
const int = (min: number, max?: number): OptionCheck =>
  max === undefined ? { kind: 'integer', min } : { kind: 'integer', min, max }
const custom: OptionCheck = { kind: 'custom' }

/** Every queue option (the type checker makes sure none of QueueOptions is missing). */
export const QUEUE_OPTIONS: { readonly [K in keyof QueueOptions]-?: QueueOptionRow<K> } = Object.freeze({
  preset: {
    check: custom,
    default: 'default',
    pipeline: false,
    doc: 'named profile (presets.ts) under your options',
  },
  send: { check: custom, pipeline: false, doc: 'in-thread send function; exactly one of send and sender' },
  sender: {
    check: custom,
    pipeline: true,
    doc: 'sender module { module, options }; exactly one of send and sender',
  },
  maxBatchSize: { check: int(1, 1_000_000), default: 1000, pipeline: true, doc: 'items per batch' },
  maxBatchBytes: {
    check: int(64, 256 * 1024 * 1024),
    default: 1024 * 1024,
    pipeline: true,
    doc: 'bytes per batch',
  },
  flushIntervalMs: { check: int(0, DAY_MS), default: 5000, pipeline: true, doc: 'ms a batch may linger' },
  adaptiveBatching: {
    check: custom,
    default: false,
    pipeline: true,
    doc: 'boolean or ADAPTIVE_BATCHING_OPTIONS',
  },
  adaptiveConcurrency: {
    check: custom,
    default: false,
    pipeline: true,
    doc: 'boolean or ADAPTIVE_CONCURRENCY_OPTIONS',
  },
  ringBytes: {
    check: int(1024, MAX_LANE_CAPACITY),
    default: 8 * 1024 * 1024,
    pipeline: false,
    doc: 'bytes per lane',
  },
  maxItemBytes: {
    check: int(1, 256 * 1024 * 1024),
    default: 1024 * 1024,
    pipeline: true,
    doc: 'bytes per item',
  },
  strictItems: {
    check: { kind: 'boolean' },
    default: false,
    pipeline: false,
    doc: 'refuse items that would not round-trip',
  },
  softLimit: {
    check: { kind: 'number', min: 0.01, max: 1 },
    default: 0.8,
    pipeline: true,
    doc: 'lane fill ratio',
  },
  hardLimit: {
    check: { kind: 'number', min: 0.01, max: 1 },
    default: 0.95,
    pipeline: true,
    doc: 'lane fill ratio',
  },
  fullPolicy: {
    check: { kind: 'oneOf', values: FULL_POLICIES },
    default: 'block',
    pipeline: false,
    doc: 'at the hard limit',
  },
  maxBlockMs: {
    check: int(0, DAY_MS),
    default: 60_000,
    pipeline: false,
    doc: 'ms a producer may be held back in all',
  },
  maxBackoffMs: {
    check: int(0, 60_000),
    default: 50,
    pipeline: false,
    doc: 'ms one async enqueue may be paced',
  },
  senderThreads: {
    check: int(1, 256),
    default: Math.max(1, availableParallelism() - 1),
    pipeline: true,
    doc: 'sender pool threads',
  },
  senderConcurrency: { check: int(1, 1024), default: 4, pipeline: true, doc: 'sends per sender thread' },
  maxInFlightBatches: {
    check: int(1, 65_536),
    pipeline: true,
    doc: 'batches in flight; default senderThreads × senderConcurrency, at least 2',
  },
  sendTimeoutMs: { check: int(1, DAY_MS), default: 30_000, pipeline: true, doc: 'ms per send' },
  startTimeoutMs: { check: int(1, DAY_MS), default: 30_000, pipeline: false, doc: 'ms start() may take' },
  maxAttempts: {
    check: { kind: 'integer', min: 1, max: Number.MAX_SAFE_INTEGER, orInfinity: true },
    default: Number.POSITIVE_INFINITY,
    pipeline: true,
    doc: 'attempts per batch',
  },
  retryInitialDelayMs: {
    check: int(0, 3600 * 1000),
    default: 100,
    pipeline: true,
    doc: 'ms before the first retry',
  },
  retryMaxDelayMs: {
    check: int(0, DAY_MS),
    default: 30_000,
    pipeline: true,
    doc: 'ms between retries, at most',
  },
  maxRetryAgeMs: {
    check: { kind: 'integer', min: 1, max: Number.MAX_SAFE_INTEGER, orInfinity: true },
    default: Number.POSITIVE_INFINITY,
    pipeline: true,
    doc: 'ms a batch may be retried',
  },
  onDeadLetter: { check: custom, pipeline: false, doc: 'function called with each dead letter' },
  wal: { check: custom, pipeline: true, doc: 'WAL_OPTIONS' },
  circuitBreaker: { check: custom, default: true, pipeline: true, doc: 'boolean or CIRCUIT_BREAKER_OPTIONS' },
  deadLetterFile: {
    check: custom,
    pipeline: true,
    doc: 'file path (NDJSON), resolved against the working directory',
  },
})

/** `adaptiveBatching: {…}`. */
export const ADAPTIVE_BATCHING_OPTIONS: { readonly [K in keyof AdaptiveBatchingOptions]-?: OptionRow } =
  Object.freeze({
    minBatchSize: { check: int(1), default: 100, doc: 'items; at most maxBatchSize' },
    maxBatchSize: { check: int(1), default: 5000, doc: 'items; also the batch size limit when larger' },
    targetLatencyMs: { check: int(1), default: 50, doc: 'ms of send latency steered towards' },
  })

/** `adaptiveConcurrency: {…}`. */
export const ADAPTIVE_CONCURRENCY_OPTIONS: { readonly [K in keyof AdaptiveConcurrencyOptions]-?: OptionRow } =
  Object.freeze({
    initialConcurrency: { check: int(1), default: 1, doc: 'batches in flight at the start' },
    decreaseRatio: {
      check: { kind: 'interval', min: 0, max: 1, open: 'both' },
      default: 0.9,
      doc: 'factor on back pressure, in (0, 1)',
    },
    ewmaAlpha: {
      check: { kind: 'interval', min: 0, max: 1, open: 'min' },
      default: 0.4,
      doc: 'weight of the latest period, in (0, 1]',
    },
    rttDeviationScale: {
      check: { kind: 'number', min: 0, max: Number.POSITIVE_INFINITY },
      default: 2.5,
      doc: 'deviations above the mean that count as back pressure',
    },
  })

/** `circuitBreaker: {…}`. */
export const CIRCUIT_BREAKER_OPTIONS: { readonly [K in keyof CircuitBreakerOptions]-?: OptionRow } =
  Object.freeze({
    failureRateThreshold: {
      check: { kind: 'interval', min: 0, max: 1, open: 'min' },
      default: 0.5,
      doc: 'failure ratio that opens the circuit, in (0, 1]',
    },
    minimumRequests: { check: int(1), default: 10, doc: 'outcomes before the ratio counts' },
    windowMs: { check: int(1), default: 10_000, doc: 'ms of rolling window' },
    resetTimeoutMs: { check: int(1), default: 5000, doc: 'ms open before probing' },
    halfOpenProbes: { check: int(1), default: 1, doc: 'probe batches while half-open' },
    whileOpen: {
      check: { kind: 'oneOf', values: ['accept', 'reject'] },
      default: 'accept',
      doc: 'enqueue while open',
    },
  })

/** `wal: {…}`. */
export const WAL_OPTIONS: { readonly [K in keyof WalQueueOptions]-?: OptionRow } = Object.freeze({
  dir: { check: custom, doc: 'directory path; required' },
  mode: {
    check: { kind: 'oneOf', values: ['first', 'spill'] },
    doc: "'first'; 'spill' when fullPolicy is 'spill'",
  },
  syncMode: {
    check: { kind: 'oneOf', values: ['always', 'periodic', 'none'] },
    default: 'always',
    doc: 'when to fdatasync',
  },
  syncIntervalMs: { check: int(1), default: 1000, doc: "ms between fdatasyncs (syncMode 'periodic')" },
  maxBytes: {
    check: int(4096),
    default: 1024 * 1024 * 1024,
    doc: 'bytes of log files; at least two segments',
  },
  fullPolicy: {
    check: { kind: 'oneOf', values: ['block', 'reject', 'dropNewest', 'dropOldest'] },
    default: 'block',
    doc: 'at maxBytes',
  },
  segmentBytes: { check: int(4096), default: DEFAULT_SEGMENT_BYTES, doc: 'bytes per segment' },
  compression: { check: { kind: 'boolean' }, default: false, doc: 'compress frames' },
  encryption: { check: custom, doc: '{ keyId, keys: { [id]: 32-byte key } }' },
  fs: { check: custom, doc: 'module URL or path of a WalFs' },
})

/** The defaults of a table. */
export function defaultsOf(table: Readonly<Record<string, OptionRow>>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, row] of Object.entries(table)) if ('default' in row) out[key] = row.default
  return Object.freeze(out)
}

/** The keys of PipelineConfig at run time. */
export const PIPELINE_OPTION_KEYS: readonly PipelineOptionKey[] = Object.freeze(
  (Object.keys(QUEUE_OPTIONS) as Array<keyof QueueOptions>).filter(
    (key) => QUEUE_OPTIONS[key].pipeline,
  ) as PipelineOptionKey[],
)

/** Checks what `table`'s rows can check in `values` (defaults already merged in), keys under `prefix`. */
export function checkRows(
  check: ConfigCheck,
  table: Readonly<Record<string, OptionRow>>,
  values: Readonly<Record<string, unknown>>,
  prefix = '',
): void {
  for (const [key, row] of Object.entries(table)) {
    const v = values[key]
    if (v === undefined && !('default' in row)) continue
    const name = `${prefix}${key}`
    const c = row.check
    switch (c.kind) {
      case 'integer':
        if (!(c.orInfinity && v === Number.POSITIVE_INFINITY)) check.integer(name, v, c.min, c.max)
        break
      case 'number':
        if (c.max === Number.POSITIVE_INFINITY) {
          if (typeof v !== 'number' || !Number.isFinite(v) || v < c.min)
            check.add(name, `must be a finite number >= ${c.min} (got ${describeValue(v)})`)
        } else check.number(name, v, c.min, c.max)
        break
      case 'interval': {
        const n = v as number
        const inside = typeof v === 'number' && n > c.min && (c.open === 'both' ? n < c.max : n <= c.max)
        if (!inside) {
          const range = `(${c.min}, ${c.max}${c.open === 'both' ? ')' : ']'}`
          check.add(name, `must be a number in ${range} (got ${describeValue(v)})`)
        }
        break
      }
      case 'boolean':
        check.boolean(name, v)
        break
      case 'oneOf':
        check.oneOf(name, v, c.values)
        break
      case 'custom':
        break
      default: {
        const never: never = c
        throw new TypeError(`options: unknown check ${JSON.stringify(never)}`)
      }
    }
  }
}

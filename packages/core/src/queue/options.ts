/**
 * The queue's options as data: one table per options object (key, check,
 * default, which thread needs it, doc) from which the validation, the
 * known keys, the defaults and the pipeline thread's config keys are derived.
 * What a table cannot say (the sender, cross-field rules, the encryption
 * keys) is checked by code below, through the same ConfigCheck, so that one
 * InvalidConfigError lists every issue.
 */
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { availableParallelism } from 'node:os'
import { isAbsolute, join, resolve as resolvePath } from 'node:path'
import { pathToFileURL } from 'node:url'
// The defaults module alone: resolving options must not load the log on the queue's thread.
import { DEFAULT_SEGMENT_BYTES } from '@vinequeue/wal/defaults'
import { ConfigCheck, describeValue } from '../config/config-check.ts'
import { InvalidConfigError } from '../errors.ts'
import { laneCapacityFor, MAX_LANE_CAPACITY, recordSize } from '../ring/layout.ts'
import { presets } from './presets.ts'
import type {
  AdaptiveBatchingOptions,
  AdaptiveConcurrencyOptions,
  CircuitBreakerOptions,
  FullPolicy,
  QueueOptions,
  ResolvedOptions,
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
  maxBlockMs: { check: int(0, DAY_MS), default: 60_000, pipeline: false, doc: 'ms an enqueue may wait' },
  maxBackoffMs: { check: int(0, 60_000), default: 50, pipeline: false, doc: 'ms of producer slow-down' },
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
function defaultsOf(table: Readonly<Record<string, OptionRow>>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, row] of Object.entries(table)) if ('default' in row) out[key] = row.default
  return Object.freeze(out)
}

/** Library defaults, before a preset (the `default` preset fills the batching fields). */
export const kDefaultOptions: Readonly<Partial<ResolvedOptions>> = defaultsOf(QUEUE_OPTIONS)
const ADAPTIVE_DEFAULTS = defaultsOf(ADAPTIVE_BATCHING_OPTIONS) as Required<AdaptiveBatchingOptions>
const CONCURRENCY_DEFAULTS = defaultsOf(ADAPTIVE_CONCURRENCY_OPTIONS) as Required<AdaptiveConcurrencyOptions>
const CIRCUIT_DEFAULTS = defaultsOf(CIRCUIT_BREAKER_OPTIONS) as Required<CircuitBreakerOptions>
const WAL_DEFAULTS = defaultsOf(WAL_OPTIONS)

/** The keys of PipelineConfig at run time. */
export const PIPELINE_OPTION_KEYS: readonly PipelineOptionKey[] = Object.freeze(
  (Object.keys(QUEUE_OPTIONS) as Array<keyof QueueOptions>).filter(
    (key) => QUEUE_OPTIONS[key].pipeline,
  ) as PipelineOptionKey[],
)

/** Checks what `table`'s rows can check in `values` (defaults already merged in), keys under `prefix`. */
function checkRows(
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

function merge<T extends object>(...layers: Array<object | undefined>): T {
  const out: Record<string, unknown> = {}
  for (const layer of layers) {
    if (!layer) continue
    for (const [k, v] of Object.entries(layer)) if (v !== undefined) out[k] = v
  }
  return out as T
}

/**
 * `true` → the defaults; an object → checked against `table` (unknown keys
 * refused) over the defaults; `false` → false.
 */
function nested<T extends object>(
  check: ConfigCheck,
  key: string,
  value: unknown,
  table: Readonly<Record<string, OptionRow>>,
  defaults: T,
): T | false {
  if (value === false) return false
  if (value === true) return defaults
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    check.unknownKeys(value, Object.keys(table), `${key}.`)
    const merged = merge<T>(defaults, value)
    checkRows(check, table, merged as Record<string, unknown>, `${key}.`)
    return merged
  }
  check.add(key, `must be a boolean or an object (got ${describeValue(value)})`)
  return false
}

/**
 * Merges preset, defaults and the user's options (skipping `undefined`) and
 * validates the result, reporting every bad field in one InvalidConfigError.
 */
export function resolveOptions(input: QueueOptions): ResolvedOptions {
  if (input === null || typeof input !== 'object') {
    throw new InvalidConfigError('Invalid queue options: options must be an object', {
      issues: ['options must be an object'],
    })
  }
  const check = new ConfigCheck('queue options')
  check.unknownKeys(input, Object.keys(QUEUE_OPTIONS))
  const presetName = input.preset ?? 'default'
  const preset = (presets as Record<string, object>)[presetName]
  if (!preset)
    check.add('preset', `must be one of ${Object.keys(presets).join(', ')} (got ${String(presetName)})`)
  const o = merge<Record<string, any>>(kDefaultOptions, preset, input)
  checkRows(check, QUEUE_OPTIONS, o)

  if (!check.has('softLimit') && !check.has('hardLimit') && o.softLimit > o.hardLimit) {
    check.add('softLimit', `must not exceed hardLimit (${o.softLimit} > ${o.hardLimit})`)
  }
  const wal = resolveWal(check, o)
  const circuitBreaker = nested(
    check,
    'circuitBreaker',
    o.circuitBreaker,
    CIRCUIT_BREAKER_OPTIONS,
    CIRCUIT_DEFAULTS,
  )
  if (
    o.deadLetterFile !== undefined &&
    (typeof o.deadLetterFile !== 'string' || o.deadLetterFile.length === 0)
  ) {
    check.add('deadLetterFile', `must be a file path (got ${describeValue(o.deadLetterFile)})`)
  }
  if (o.onDeadLetter !== undefined && typeof o.onDeadLetter !== 'function') {
    check.add('onDeadLetter', `must be a function (got ${describeValue(o.onDeadLetter)})`)
  }
  const sender = resolveSender(check, o)

  const adaptive = nested(
    check,
    'adaptiveBatching',
    o.adaptiveBatching,
    ADAPTIVE_BATCHING_OPTIONS,
    ADAPTIVE_DEFAULTS,
  )
  if (
    adaptive &&
    !check.has('adaptiveBatching.minBatchSize') &&
    !check.has('adaptiveBatching.maxBatchSize') &&
    adaptive.minBatchSize > adaptive.maxBatchSize
  )
    check.add('adaptiveBatching.minBatchSize', 'must not exceed maxBatchSize')
  const concurrency = nested(
    check,
    'adaptiveConcurrency',
    o.adaptiveConcurrency,
    ADAPTIVE_CONCURRENCY_OPTIONS,
    CONCURRENCY_DEFAULTS,
  )

  // Cross-field sizes: an item must fit a batch and (with wrap-around slack) a lane.
  if (check.issues.length === 0) {
    const cap = laneCapacityFor(o.ringBytes)
    const limit = Math.floor(cap * o.hardLimit)
    if (recordSize(o.maxItemBytes) * 2 > limit) {
      check.add(
        'maxItemBytes',
        `must be at most half the ring's hard limit (ringBytes ${cap} × hardLimit ${o.hardLimit} / 2 = ${Math.floor(limit / 2) - 8} B)`,
      )
    }
  }
  check.throwIfAny()

  const maxInFlightBatches =
    input.maxInFlightBatches ?? Math.max(2, (o.senderThreads as number) * (o.senderConcurrency as number))
  if (adaptive && adaptive.maxBatchSize > o.maxBatchSize) {
    // The adaptive ceiling is also the batch size limit.
    o.maxBatchSize = adaptive.maxBatchSize
  }
  return Object.freeze({
    ...(o as Omit<
      ResolvedOptions,
      'sender' | 'adaptiveBatching' | 'adaptiveConcurrency' | 'maxInFlightBatches'
    >),
    preset: presetName,
    sender,
    adaptiveBatching: adaptive,
    adaptiveConcurrency: concurrency,
    maxInFlightBatches,
    wal,
    circuitBreaker,
    deadLetterFile: o.deadLetterFile === undefined ? undefined : resolvePath(o.deadLetterFile),
  }) as ResolvedOptions
}

function resolveWal(check: ConfigCheck, o: Record<string, any>): ResolvedOptions['wal'] {
  const w = o.wal
  if (w === undefined) {
    if (o.fullPolicy === 'spill')
      check.add('fullPolicy', `'spill' needs the wal option (the log it spills to)`)
    return undefined
  }
  if (!w || typeof w !== 'object') {
    check.add('wal', `must be an object (got ${describeValue(w)})`)
    return undefined
  }
  check.unknownKeys(w, Object.keys(WAL_OPTIONS), 'wal.')
  if (typeof w.dir !== 'string' || w.dir.length === 0)
    check.add('wal.dir', `must be a directory path (got ${describeValue(w.dir)})`)
  const merged = merge<Record<string, any>>(WAL_DEFAULTS, w)
  merged.mode ??= o.fullPolicy === 'spill' ? 'spill' : 'first'
  checkRows(check, WAL_OPTIONS, merged, 'wal.')
  if (w.encryption !== undefined) checkEncryption(w.encryption, check)
  if (o.fullPolicy === 'spill' && w.mode === 'first')
    check.add('fullPolicy', `'spill' contradicts wal.mode 'first'`)
  const { segmentBytes, maxBytes } = merged
  if (Number.isInteger(maxBytes) && Number.isInteger(segmentBytes) && maxBytes < 2 * segmentBytes) {
    check.add(
      'wal.maxBytes',
      `must be at least two segments (2 × wal.segmentBytes = ${2 * segmentBytes}; got ${maxBytes})`,
    )
  }
  let fs: string | undefined
  if (w.fs instanceof URL) fs = w.fs.href
  else if (typeof w.fs === 'string' && w.fs.length > 0)
    fs = isAbsolute(w.fs) ? pathToFileURL(w.fs).href : w.fs
  else if (w.fs !== undefined)
    check.add('wal.fs', `must be a module URL or path (got ${describeValue(w.fs)})`)
  // (compression stays as given: absent means the log's own default.)
  const { compression: _compression, ...resolved } = merged
  return {
    ...resolved,
    ...(w.compression === undefined ? {} : { compression: w.compression }),
    fs,
  } as ResolvedOptions['wal']
}

/** Exactly one sender form; a module spec resolved so that the pool thread can import it. */
function resolveSender(check: ConfigCheck, o: Record<string, any>): ResolvedOptions['sender'] {
  if (o.send !== undefined && typeof o.send !== 'function') {
    check.add('send', `must be a function (got ${describeValue(o.send)})`)
  }
  if (o.send !== undefined && o.sender !== undefined) {
    check.add('send/sender', 'give exactly one of `send` (in-thread function) or `sender` (module)')
  } else if (o.send === undefined && o.sender === undefined) {
    check.add('send/sender', 'a sender is required: `send: async (batch) => {...}` or `sender: { module }`')
  }
  if (o.sender === undefined) return undefined
  const spec = o.sender
  if (spec && typeof spec === 'object') check.unknownKeys(spec, ['module', 'options'], 'sender.')
  const mod = spec && typeof spec === 'object' ? spec.module : undefined
  let sender: ResolvedOptions['sender']
  if (mod instanceof URL) sender = { module: mod.href, options: spec.options }
  else if (typeof mod === 'string' && mod.length > 0) {
    const module = resolveSenderModule(mod, check)
    if (module) sender = { module, options: spec.options }
  } else
    check.add(
      'sender.module',
      `must be a package name, absolute path or file URL (got ${describeValue(mod)})`,
    )
  if (sender) {
    try {
      structuredClone(sender.options)
    } catch (err) {
      check.add('sender.options', `must be structured-cloneable (${(err as Error).message})`)
    }
  }
  return sender
}

/**
 * Turns a sender module specifier into something the sender pool can import.
 * A bare package name is resolved from the application (process.cwd()), not
 * from @vinequeue/core's own folder, where the pool thread lives; if that
 * fails (e.g. an ESM-only package without a `default`/`require` export
 * condition) the name is passed on unchanged. `import.meta.resolve(name)`
 * from the caller's module is always exact.
 */
function resolveSenderModule(spec: string, check: ConfigCheck): string | undefined {
  if (isAbsolute(spec)) return pathToFileURL(spec).href
  if (/^[a-z][a-z0-9+.-]*:/i.test(spec)) return spec
  if (spec.startsWith('./') || spec.startsWith('../') || spec === '.' || spec === '..') {
    // Relative to the working directory, as `new Worker('./x.js')` is: the
    // pool thread that imports it lives in this package's folder, where the
    // path would mean something else. A path that names nothing there is
    // refused now rather than at start().
    const path = resolvePath(process.cwd(), spec)
    if (existsSync(path)) return pathToFileURL(path).href
    check.add(
      'sender.module',
      `${JSON.stringify(spec)} is resolved against the working directory (${process.cwd()}) to ${path}, which does not exist; to name a module relative to your own file, pass import.meta.resolve(${JSON.stringify(spec)})`,
    )
    return undefined
  }
  try {
    return pathToFileURL(createRequire(join(process.cwd(), 'index.js')).resolve(spec)).href
  } catch {
    return spec
  }
}

/** `wal.encryption`, checked as the log checks it at open: `{ keyId, keys: { [id]: 32-byte key } }`, the key for `keyId` given. */
function checkEncryption(e: unknown, check: ConfigCheck): void {
  if (!e || typeof e !== 'object' || Array.isArray(e)) {
    check.add('wal.encryption', `must be an object { keyId, keys } (got ${describeValue(e)})`)
    return
  }
  const { keyId, keys } = e as { keyId?: unknown; keys?: unknown }
  check.unknownKeys(e, ['keyId', 'keys'], 'wal.encryption.')
  const validId = (id: unknown): boolean =>
    Number.isInteger(id) && (id as number) >= 0 && (id as number) <= 0xffff
  check.integer('wal.encryption.keyId', keyId, 0, 0xffff)
  if (!keys || typeof keys !== 'object' || Array.isArray(keys)) {
    check.add('wal.encryption.keys', `must be an object of key id → 32-byte key (got ${describeValue(keys)})`)
    return
  }
  for (const [id, key] of Object.entries(keys)) {
    if (!validId(Number(id)) || String(Number(id)) !== id) {
      check.add('wal.encryption.keys', `key ids must be integers from 0 to 65535 (got ${JSON.stringify(id)})`)
    }
    if (!(key instanceof Uint8Array) || key.byteLength !== 32) {
      const got = key instanceof Uint8Array ? `${key.byteLength} bytes` : describeValue(key)
      check.add(
        `wal.encryption.keys[${id}]`,
        `must be a 32-byte key (AES-256) as a Buffer or Uint8Array (got ${got})`,
      )
    }
  }
  if (validId(keyId) && !Object.hasOwn(keys, String(keyId))) {
    check.add('wal.encryption.keyId', `${keyId} has no key in wal.encryption.keys`)
  }
}

import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { availableParallelism } from 'node:os'
import { isAbsolute, join, resolve as resolvePath } from 'node:path'
import { pathToFileURL } from 'node:url'
import { InvalidConfigError } from '../errors.ts'
import { MAX_LANE_CAPACITY, recordSize } from '../ring/layout.ts'
import { presets } from './presets.ts'
import type {
  AdaptiveBatchingOptions,
  AdaptiveConcurrencyOptions,
  CircuitBreakerOptions,
  FullPolicy,
  QueueOptions,
  ResolvedOptions,
} from './types.ts'

const FULL_POLICIES: readonly FullPolicy[] = ['block', 'reject', 'dropNewest', 'dropOldest', 'spill']
const WAL_FULL_POLICIES: readonly string[] = ['block', 'reject', 'dropNewest', 'dropOldest']
const WAL_KEYS: ReadonlySet<string> = new Set([
  'dir',
  'mode',
  'syncMode',
  'syncIntervalMs',
  'maxBytes',
  'fullPolicy',
  'segmentBytes',
  'compression',
  'encryption',
  'fs',
])

const KNOWN_KEYS: ReadonlySet<string> = new Set([
  'preset',
  'send',
  'sender',
  'maxBatchSize',
  'maxBatchBytes',
  'flushIntervalMs',
  'adaptiveBatching',
  'adaptiveConcurrency',
  'ringBytes',
  'maxItemBytes',
  'strictItems',
  'softLimit',
  'hardLimit',
  'fullPolicy',
  'maxBlockMs',
  'maxBackoffMs',
  'senderThreads',
  'senderConcurrency',
  'maxInFlightBatches',
  'sendTimeoutMs',
  'maxAttempts',
  'retryInitialDelayMs',
  'retryMaxDelayMs',
  'onDeadLetter',
  'wal',
  'maxRetryAgeMs',
  'circuitBreaker',
  'deadLetterFile',
  'startTimeoutMs',
])

const CIRCUIT_DEFAULTS: Required<CircuitBreakerOptions> = Object.freeze({
  failureRateThreshold: 0.5,
  minimumRequests: 10,
  windowMs: 10_000,
  resetTimeoutMs: 5000,
  halfOpenProbes: 1,
  whileOpen: 'accept',
})

/** Library defaults, before a preset (the `default` preset fills the batching fields). */
export const kDefaultOptions: Readonly<
  Omit<ResolvedOptions, 'send' | 'sender' | 'onDeadLetter' | 'wal' | 'circuitBreaker' | 'deadLetterFile'>
> = Object.freeze({
  preset: 'default',
  maxBatchSize: 1000,
  maxBatchBytes: 1024 * 1024,
  flushIntervalMs: 5000,
  adaptiveBatching: false,
  adaptiveConcurrency: false,
  ringBytes: 8 * 1024 * 1024,
  maxItemBytes: 1024 * 1024,
  strictItems: false,
  softLimit: 0.8,
  hardLimit: 0.95,
  fullPolicy: 'block',
  maxBlockMs: 60_000,
  maxBackoffMs: 50,
  senderThreads: Math.max(1, availableParallelism() - 1),
  senderConcurrency: 4,
  maxInFlightBatches: 0, // derived below
  sendTimeoutMs: 30_000,
  maxAttempts: Number.POSITIVE_INFINITY,
  retryInitialDelayMs: 100,
  retryMaxDelayMs: 30_000,
  maxRetryAgeMs: Number.POSITIVE_INFINITY,
  startTimeoutMs: 30_000,
})

const ADAPTIVE_DEFAULTS: Required<AdaptiveBatchingOptions> = Object.freeze({
  minBatchSize: 100,
  maxBatchSize: 5000,
  targetLatencyMs: 50,
})

const CONCURRENCY_DEFAULTS: Required<AdaptiveConcurrencyOptions> = Object.freeze({
  initialConcurrency: 1,
  decreaseRatio: 0.9,
  ewmaAlpha: 0.4,
  rttDeviationScale: 2.5,
})

function merge<T extends object>(...layers: Array<object | undefined>): T {
  const out: Record<string, unknown> = {}
  for (const layer of layers) {
    if (!layer) continue
    for (const [k, v] of Object.entries(layer)) if (v !== undefined) out[k] = v
  }
  return out as T
}

/**
 * Merges preset, defaults and the user's options (skipping `undefined`) and
 * validates the result, reporting every bad field in one InvalidConfigError.
 */
export function resolveOptions(input: QueueOptions): ResolvedOptions {
  const issues: string[] = []
  if (input === null || typeof input !== 'object') {
    throw new InvalidConfigError('Invalid queue options: options must be an object', {
      issues: ['options must be an object'],
    })
  }
  for (const key of Object.keys(input)) {
    if (!KNOWN_KEYS.has(key)) issues.push(`${key}: unknown option`)
  }
  const presetName = input.preset ?? 'default'
  const preset = (presets as Record<string, object>)[presetName]
  if (!preset)
    issues.push(`preset: must be one of ${Object.keys(presets).join(', ')} (got ${String(presetName)})`)
  const o = merge<Record<string, any>>(kDefaultOptions, preset, input)

  const int = (key: string, min: number, max = Number.MAX_SAFE_INTEGER): void => {
    const v = o[key]
    if (!Number.isInteger(v) || v < min || v > max) {
      issues.push(`${key}: must be an integer from ${min} to ${max} (got ${describe(v)})`)
    }
  }
  const num = (key: string, min: number, max: number): void => {
    const v = o[key]
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
      issues.push(`${key}: must be a number from ${min} to ${max} (got ${describe(v)})`)
    }
  }

  int('maxBatchSize', 1, 1_000_000)
  int('maxBatchBytes', 64, 256 * 1024 * 1024)
  int('flushIntervalMs', 0, 24 * 3600 * 1000)
  int('ringBytes', 1024, MAX_LANE_CAPACITY)
  int('maxItemBytes', 1, 256 * 1024 * 1024)
  num('softLimit', 0.01, 1)
  num('hardLimit', 0.01, 1)
  int('maxBlockMs', 0, 24 * 3600 * 1000)
  int('maxBackoffMs', 0, 60_000)
  int('senderThreads', 1, 256)
  int('senderConcurrency', 1, 1024)
  int('sendTimeoutMs', 1, 24 * 3600 * 1000)
  int('startTimeoutMs', 1, 24 * 3600 * 1000)
  if (o.maxAttempts !== Number.POSITIVE_INFINITY) int('maxAttempts', 1)
  int('retryInitialDelayMs', 0, 3600 * 1000)
  int('retryMaxDelayMs', 0, 24 * 3600 * 1000)
  if (o.maxRetryAgeMs !== Number.POSITIVE_INFINITY) int('maxRetryAgeMs', 1)
  if (o.maxInFlightBatches !== 0 || input.maxInFlightBatches !== undefined)
    int('maxInFlightBatches', 1, 65_536)

  if (typeof o.strictItems !== 'boolean') {
    issues.push(`strictItems: must be a boolean (got ${describe(o.strictItems)})`)
  }
  if (!FULL_POLICIES.includes(o.fullPolicy)) {
    issues.push(`fullPolicy: must be one of ${FULL_POLICIES.join(', ')} (got ${describe(o.fullPolicy)})`)
  }
  const limitsValid = !issues.some((i) => i.startsWith('softLimit') || i.startsWith('hardLimit'))
  if (limitsValid && o.softLimit > o.hardLimit) {
    issues.push(`softLimit: must not exceed hardLimit (${o.softLimit} > ${o.hardLimit})`)
  }
  let wal: ResolvedOptions['wal']
  if (o.wal !== undefined) {
    const w = o.wal
    if (!w || typeof w !== 'object') issues.push(`wal: must be an object (got ${describe(w)})`)
    else {
      for (const key of Object.keys(w)) if (!WAL_KEYS.has(key)) issues.push(`wal.${key}: unknown option`)
      if (typeof w.dir !== 'string' || w.dir.length === 0)
        issues.push(`wal.dir: must be a directory path (got ${describe(w.dir)})`)
      if (w.mode !== undefined && w.mode !== 'first' && w.mode !== 'spill') {
        issues.push(`wal.mode: must be 'first' or 'spill' (got ${describe(w.mode)})`)
      }
      if (w.syncMode !== undefined && !['always', 'periodic', 'none'].includes(w.syncMode)) {
        issues.push(`wal.syncMode: must be 'always', 'periodic' or 'none' (got ${describe(w.syncMode)})`)
      }
      const walInt = (key: string, min: number): void => {
        const v = w[key]
        if (v !== undefined && (!Number.isInteger(v) || v < min))
          issues.push(`wal.${key}: must be an integer ≥ ${min} (got ${describe(v)})`)
      }
      walInt('syncIntervalMs', 1)
      walInt('segmentBytes', 4096)
      walInt('maxBytes', 4096)
      if (w.fullPolicy !== undefined && !WAL_FULL_POLICIES.includes(w.fullPolicy)) {
        issues.push(
          `wal.fullPolicy: must be one of ${WAL_FULL_POLICIES.join(', ')} (got ${describe(w.fullPolicy)})`,
        )
      }
      if (w.compression !== undefined && typeof w.compression !== 'boolean') {
        issues.push(`wal.compression: must be a boolean (got ${describe(w.compression)})`)
      }
      if (w.encryption !== undefined) checkEncryption(w.encryption, issues)
      if (o.fullPolicy === 'spill' && w.mode === 'first') {
        issues.push(`fullPolicy: 'spill' contradicts wal.mode 'first'`)
      }
      const segmentBytes = w.segmentBytes ?? 64 * 1024 * 1024
      const maxBytes = w.maxBytes ?? 1024 * 1024 * 1024
      if (Number.isInteger(maxBytes) && Number.isInteger(segmentBytes) && maxBytes < 2 * segmentBytes) {
        issues.push(
          `wal.maxBytes: must be at least two segments (2 × wal.segmentBytes = ${2 * segmentBytes}; got ${maxBytes})`,
        )
      }
      let fs: string | undefined
      if (w.fs instanceof URL) fs = w.fs.href
      else if (typeof w.fs === 'string' && w.fs.length > 0)
        fs = isAbsolute(w.fs) ? pathToFileURL(w.fs).href : w.fs
      else if (w.fs !== undefined) issues.push(`wal.fs: must be a module URL or path (got ${describe(w.fs)})`)
      wal = {
        ...w,
        fs,
        mode: w.mode ?? (o.fullPolicy === 'spill' ? 'spill' : 'first'),
        syncMode: w.syncMode ?? 'always',
        syncIntervalMs: w.syncIntervalMs ?? 1000,
        maxBytes,
        fullPolicy: w.fullPolicy ?? 'block',
        segmentBytes,
      }
    }
  } else if (o.fullPolicy === 'spill') {
    issues.push(`fullPolicy: 'spill' needs the wal option (the log it spills to)`)
  }
  let circuitBreaker: ResolvedOptions['circuitBreaker'] = CIRCUIT_DEFAULTS
  if (o.circuitBreaker === false) circuitBreaker = false
  else if (o.circuitBreaker && typeof o.circuitBreaker === 'object') {
    const c = merge<Required<CircuitBreakerOptions>>(CIRCUIT_DEFAULTS, o.circuitBreaker)
    circuitBreaker = c
    for (const key of Object.keys(o.circuitBreaker)) {
      if (!(key in CIRCUIT_DEFAULTS)) issues.push(`circuitBreaker.${key}: unknown option`)
    }
    const r = c.failureRateThreshold
    if (typeof r !== 'number' || !(r > 0 && r <= 1))
      issues.push(`circuitBreaker.failureRateThreshold: must be a number in (0, 1] (got ${describe(r)})`)
    for (const key of ['minimumRequests', 'windowMs', 'resetTimeoutMs', 'halfOpenProbes'] as const) {
      if (!Number.isInteger(c[key]) || c[key] < 1)
        issues.push(`circuitBreaker.${key}: must be a positive integer (got ${describe(c[key])})`)
    }
    if (c.whileOpen !== 'accept' && c.whileOpen !== 'reject')
      issues.push(`circuitBreaker.whileOpen: must be 'accept' or 'reject' (got ${describe(c.whileOpen)})`)
  } else if (o.circuitBreaker !== undefined && o.circuitBreaker !== true) {
    issues.push(`circuitBreaker: must be a boolean or an object (got ${describe(o.circuitBreaker)})`)
  }
  if (
    o.deadLetterFile !== undefined &&
    (typeof o.deadLetterFile !== 'string' || o.deadLetterFile.length === 0)
  ) {
    issues.push(`deadLetterFile: must be a file path (got ${describe(o.deadLetterFile)})`)
  }
  if (o.onDeadLetter !== undefined && typeof o.onDeadLetter !== 'function') {
    issues.push(`onDeadLetter: must be a function (got ${describe(o.onDeadLetter)})`)
  }

  // Exactly one sender form.
  let sender: ResolvedOptions['sender']
  if (o.send !== undefined && typeof o.send !== 'function') {
    issues.push(`send: must be a function (got ${describe(o.send)})`)
  }
  if (o.send !== undefined && o.sender !== undefined) {
    issues.push('send/sender: give exactly one of `send` (in-thread function) or `sender` (module)')
  } else if (o.send === undefined && o.sender === undefined) {
    issues.push('send/sender: a sender is required: `send: async (batch) => {...}` or `sender: { module }`')
  }
  if (o.sender !== undefined) {
    const spec = o.sender
    const mod = spec && typeof spec === 'object' ? spec.module : undefined
    if (mod instanceof URL) sender = { module: mod.href, options: spec.options }
    else if (typeof mod === 'string' && mod.length > 0) {
      const module = resolveSenderModule(mod, issues)
      if (module) sender = { module, options: spec.options }
    } else
      issues.push(`sender.module: must be a package name, absolute path or file URL (got ${describe(mod)})`)
    if (sender) {
      try {
        structuredClone(sender.options)
      } catch (err) {
        issues.push(`sender.options: must be structured-cloneable (${(err as Error).message})`)
      }
    }
  }

  let adaptive: ResolvedOptions['adaptiveBatching'] = false
  if (o.adaptiveBatching === true) adaptive = ADAPTIVE_DEFAULTS
  else if (o.adaptiveBatching && typeof o.adaptiveBatching === 'object') {
    adaptive = merge<Required<AdaptiveBatchingOptions>>(ADAPTIVE_DEFAULTS, o.adaptiveBatching)
    for (const key of Object.keys(o.adaptiveBatching)) {
      if (!(key in ADAPTIVE_DEFAULTS)) issues.push(`adaptiveBatching.${key}: unknown option`)
    }
    const a = adaptive as Record<string, any>
    for (const key of ['minBatchSize', 'maxBatchSize', 'targetLatencyMs'] as const) {
      if (!Number.isInteger(a[key]) || a[key] < 1) {
        issues.push(`adaptiveBatching.${key}: must be a positive integer (got ${describe(a[key])})`)
      }
    }
    if (a.minBatchSize > a.maxBatchSize)
      issues.push('adaptiveBatching.minBatchSize: must not exceed maxBatchSize')
  } else if (o.adaptiveBatching !== false) {
    issues.push(`adaptiveBatching: must be a boolean or an object (got ${describe(o.adaptiveBatching)})`)
  }

  let concurrency: ResolvedOptions['adaptiveConcurrency'] = false
  if (o.adaptiveConcurrency === true) concurrency = CONCURRENCY_DEFAULTS
  else if (o.adaptiveConcurrency && typeof o.adaptiveConcurrency === 'object') {
    const c = merge<Required<AdaptiveConcurrencyOptions>>(CONCURRENCY_DEFAULTS, o.adaptiveConcurrency)
    concurrency = c
    for (const key of Object.keys(o.adaptiveConcurrency)) {
      if (!(key in CONCURRENCY_DEFAULTS)) issues.push(`adaptiveConcurrency.${key}: unknown option`)
    }
    if (!Number.isInteger(c.initialConcurrency) || c.initialConcurrency < 1)
      issues.push(
        `adaptiveConcurrency.initialConcurrency: must be a positive integer (got ${describe(c.initialConcurrency)})`,
      )
    if (typeof c.decreaseRatio !== 'number' || !(c.decreaseRatio > 0 && c.decreaseRatio < 1))
      issues.push(
        `adaptiveConcurrency.decreaseRatio: must be a number in (0, 1) (got ${describe(c.decreaseRatio)})`,
      )
    if (typeof c.ewmaAlpha !== 'number' || !(c.ewmaAlpha > 0 && c.ewmaAlpha <= 1))
      issues.push(`adaptiveConcurrency.ewmaAlpha: must be a number in (0, 1] (got ${describe(c.ewmaAlpha)})`)
    if (
      typeof c.rttDeviationScale !== 'number' ||
      !(c.rttDeviationScale >= 0) ||
      !Number.isFinite(c.rttDeviationScale)
    )
      issues.push(
        `adaptiveConcurrency.rttDeviationScale: must be a finite number >= 0 (got ${describe(c.rttDeviationScale)})`,
      )
  } else if (o.adaptiveConcurrency !== false) {
    issues.push(
      `adaptiveConcurrency: must be a boolean or an object (got ${describe(o.adaptiveConcurrency)})`,
    )
  }

  // Cross-field sizes: an item must fit a batch and (with wrap-around slack) a lane.
  if (issues.length === 0) {
    let cap = 1024
    while (cap < o.ringBytes) cap *= 2
    const limit = Math.floor(cap * o.hardLimit)
    if (recordSize(o.maxItemBytes) * 2 > limit) {
      issues.push(
        `maxItemBytes: must be at most half the ring's hard limit (ringBytes ${cap} × hardLimit ${o.hardLimit} / 2 = ${Math.floor(limit / 2) - 8} B)`,
      )
    }
  }

  if (issues.length > 0) {
    throw new InvalidConfigError(`Invalid queue options:\n  - ${issues.join('\n  - ')}`, { issues })
  }

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

/**
 * Turns a sender module specifier into something the sender pool can import.
 * A bare package name is resolved from the application (process.cwd()), not
 * from @vinequeue/core's own folder, where the pool thread lives; if that
 * fails (e.g. an ESM-only package without a `default`/`require` export
 * condition) the name is passed on unchanged. `import.meta.resolve(name)`
 * from the caller's module is always exact.
 */
function resolveSenderModule(spec: string, issues: string[]): string | undefined {
  if (isAbsolute(spec)) return pathToFileURL(spec).href
  if (/^[a-z][a-z0-9+.-]*:/i.test(spec)) return spec
  if (spec.startsWith('./') || spec.startsWith('../') || spec === '.' || spec === '..') {
    // Relative to the working directory, as `new Worker('./x.js')` is: the
    // pool thread that imports it lives in this package's folder, where the
    // path would mean something else. A path that names nothing there is
    // refused now rather than at start().
    const path = resolvePath(process.cwd(), spec)
    if (existsSync(path)) return pathToFileURL(path).href
    issues.push(
      `sender.module: ${JSON.stringify(spec)} is resolved against the working directory (${process.cwd()}) to ${path}, which does not exist; to name a module relative to your own file, pass import.meta.resolve(${JSON.stringify(spec)})`,
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
function checkEncryption(e: unknown, issues: string[]): void {
  if (!e || typeof e !== 'object' || Array.isArray(e)) {
    issues.push(`wal.encryption: must be an object { keyId, keys } (got ${describe(e)})`)
    return
  }
  const { keyId, keys, ...rest } = e as { keyId?: unknown; keys?: unknown }
  for (const key of Object.keys(rest)) issues.push(`wal.encryption.${key}: unknown option`)
  const validId = (id: unknown): boolean =>
    Number.isInteger(id) && (id as number) >= 0 && (id as number) <= 0xffff
  if (!validId(keyId)) {
    issues.push(`wal.encryption.keyId: must be an integer from 0 to 65535 (got ${describe(keyId)})`)
  }
  if (!keys || typeof keys !== 'object' || Array.isArray(keys)) {
    issues.push(`wal.encryption.keys: must be an object of key id → 32-byte key (got ${describe(keys)})`)
    return
  }
  for (const [id, key] of Object.entries(keys)) {
    if (!validId(Number(id)) || String(Number(id)) !== id) {
      issues.push(`wal.encryption.keys: key ids must be integers from 0 to 65535 (got ${JSON.stringify(id)})`)
    }
    if (!(key instanceof Uint8Array) || key.byteLength !== 32) {
      const got = key instanceof Uint8Array ? `${key.byteLength} bytes` : describe(key)
      issues.push(
        `wal.encryption.keys[${id}]: must be a 32-byte key (AES-256) as a Buffer or Uint8Array (got ${got})`,
      )
    }
  }
  if (validId(keyId) && !Object.hasOwn(keys, String(keyId))) {
    issues.push(`wal.encryption.keyId: ${keyId} has no key in wal.encryption.keys`)
  }
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v)
  if (typeof v === 'function') return 'a function'
  if (v === null) return 'null'
  if (typeof v === 'object') return Array.isArray(v) ? 'an array' : 'an object'
  return String(v)
}

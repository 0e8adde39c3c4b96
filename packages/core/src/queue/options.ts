/**
 * Resolves the queue's options: preset, defaults and the user's options
 * merged, then checked against the tables of option-table.ts; what a table
 * cannot say (the sender, cross-field rules, the encryption keys) is checked
 * here through the same ConfigCheck, so that one InvalidConfigError lists
 * every issue.
 */
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { isAbsolute, join, resolve as resolvePath } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ConfigCheck, describeValue } from '../config/config-check.ts'
import { InvalidConfigError } from '../errors.ts'
import { laneCapacityFor, recordSize } from '../ring/layout.ts'
import {
  ADAPTIVE_BATCHING_OPTIONS,
  ADAPTIVE_CONCURRENCY_OPTIONS,
  CIRCUIT_BREAKER_OPTIONS,
  checkRows,
  defaultsOf,
  type OptionRow,
  QUEUE_OPTIONS,
  WAL_OPTIONS,
} from './option-table.ts'
import { presets } from './presets.ts'
import type {
  AdaptiveBatchingOptions,
  AdaptiveConcurrencyOptions,
  CircuitBreakerOptions,
  QueueOptions,
  ResolvedOptions,
} from './types.ts'

/** Library defaults, before a preset (the `default` preset fills the batching fields). */
export const kDefaultOptions: Readonly<Partial<ResolvedOptions>> = defaultsOf(QUEUE_OPTIONS)
const ADAPTIVE_DEFAULTS = defaultsOf(ADAPTIVE_BATCHING_OPTIONS) as Required<AdaptiveBatchingOptions>
const CONCURRENCY_DEFAULTS = defaultsOf(ADAPTIVE_CONCURRENCY_OPTIONS) as Required<AdaptiveConcurrencyOptions>
const CIRCUIT_DEFAULTS = defaultsOf(CIRCUIT_BREAKER_OPTIONS) as Required<CircuitBreakerOptions>
const WAL_DEFAULTS = defaultsOf(WAL_OPTIONS)

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

/**
 * The option-validation kit of VineQueue, shared by the queue and by senders
 * (exported from `@vinequeue/core/sender`): every check adds an issue
 * (`'key: what is wrong (got …)'`) instead of throwing, so that one
 * InvalidConfigError lists every bad field at once.
 */
import { InvalidConfigError } from '../errors.ts'

/** How a value is named in an issue: strings quoted, objects by their kind, never dumped. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'bigint') return `${value}n`
  if (typeof value === 'function') return 'a function'
  if (value === null) return 'null'
  if (value instanceof Uint8Array) return `${value.constructor.name}(${value.byteLength})`
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object'
  return String(value)
}

/** A plain object (not null, an array or bytes): what an options object must be. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array)
  )
}

/**
 * Collects the issues of one options object (and its nested ones: keys are
 * given with their path, e.g. `'tls.ca'`), then throws them together.
 *
 * ```ts
 * const check = new ConfigCheck('my sender options')
 * check.unknownKeys(options, ['url', 'timeoutMs'])
 * check.integer('timeoutMs', options.timeoutMs ?? 1000, 1, 60_000, 'ms')
 * check.throwIfAny() // InvalidConfigError { code: 'VQ_INVALID_CONFIG', issues }
 * ```
 */
export class ConfigCheck {
  readonly #subject: string
  readonly #issues: string[] = []

  /** `subject` names what is checked in the error message (`'HTTP sender options'`). */
  constructor(subject: string) {
    this.#subject = subject
  }

  /** Every issue found so far. */
  get issues(): readonly string[] {
    return this.#issues
  }

  /** Adds `'key: problem'`. */
  add(key: string, problem: string): void {
    this.#issues.push(`${key}: ${problem}`)
  }

  /** True when an issue about `key` (or one of its nested keys) was added. */
  has(key: string): boolean {
    return this.#issues.some((i) => i.startsWith(`${key}:`) || i.startsWith(`${key}.`))
  }

  /** Refuses every own key of `object` not in `known`, named under `prefix` (`'tls.'`). */
  unknownKeys(object: object, known: Iterable<string>, prefix = ''): void {
    const set = known instanceof Set ? (known as ReadonlySet<string>) : new Set(known)
    for (const key of Object.keys(object)) if (!set.has(key)) this.add(`${prefix}${key}`, 'unknown option')
  }

  /**
   * An integer from `min` to `max` (no `max`: any from `min` up); `unit` is
   * named in the issue. False when it is not.
   */
  integer(key: string, value: unknown, min: number, max?: number, unit = ''): boolean {
    const top = max ?? Number.MAX_SAFE_INTEGER
    if (Number.isInteger(value) && (value as number) >= min && (value as number) <= top) return true
    const u = unit === '' ? '' : ` ${unit}`
    const range = max === undefined ? `≥ ${min}${u}` : `from ${min} to ${max}${u}`
    this.add(key, `must be an integer ${range} (got ${describeValue(value)})`)
    return false
  }

  /** A finite number from `min` to `max`. False when it is not. */
  number(key: string, value: unknown, min: number, max: number): boolean {
    if (typeof value === 'number' && Number.isFinite(value) && value >= min && value <= max) return true
    this.add(key, `must be a number from ${min} to ${max} (got ${describeValue(value)})`)
    return false
  }

  /** true or false. */
  boolean(key: string, value: unknown): boolean {
    if (typeof value === 'boolean') return true
    this.add(key, `must be a boolean (got ${describeValue(value)})`)
    return false
  }

  /** One of `choices`. */
  oneOf<T>(key: string, value: unknown, choices: readonly T[]): value is T {
    if (choices.includes(value as T)) return true
    this.add(key, `must be one of ${choices.join(', ')} (got ${describeValue(value)})`)
    return false
  }

  /** Adds `'key: problem'` and throws at once: nothing else can be checked (options that are no object). */
  refuse(key: string, problem: string): never {
    this.add(key, problem)
    throw this.#error()
  }

  /** Throws one InvalidConfigError listing every issue, if there is any. */
  throwIfAny(): void {
    if (this.#issues.length > 0) throw this.#error()
  }

  #error(): InvalidConfigError {
    const issues = this.#issues
    return new InvalidConfigError(`Invalid ${this.#subject}:\n  - ${issues.join('\n  - ')}`, {
      issues: [...issues],
    })
  }
}

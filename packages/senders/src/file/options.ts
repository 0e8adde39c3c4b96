import { ConfigCheck, describeValue, isPlainObject } from '@vinequeue/core/sender'

/**
 * Options of the file sender. They cross a thread boundary (the queue clones
 * them into every sender thread), so they are plain data: no functions, no
 * streams, no open file handles.
 */
export interface FileSenderOptions {
  /**
   * File to append to (created, mode 0666 & ~umask, if missing; its folder
   * must exist). Each sender thread keeps it open until the queue stops, so
   * rotate it by copy-and-truncate, not by renaming. Default: stdout.
   */
  readonly path?: string
  /** Line format. Only `'ndjson'` (one JSON document per item and line). Default `'ndjson'`. */
  readonly format?: 'ndjson'
  /** fsync the file after each batch, so a delivered batch survives a power cut. Default false. */
  readonly fsync?: boolean
}

export interface ResolvedFileSenderOptions {
  readonly path: string | undefined
  readonly format: 'ndjson'
  readonly fsync: boolean
}

const kDefaults: Readonly<ResolvedFileSenderOptions> = Object.freeze({
  path: undefined,
  format: 'ndjson',
  fsync: false,
})

/**
 * Merges `options` over the defaults and validates them, reporting every bad
 * field at once (one InvalidConfigError with `issues`). Runs in the sender
 * thread when the queue starts, so a bad option makes `queue.start()` reject
 * instead of failing every send later.
 */
export function resolveOptions(options: FileSenderOptions | undefined): ResolvedFileSenderOptions {
  const check: ConfigCheck = new ConfigCheck('file sender options')
  if (options !== undefined && !isPlainObject(options)) {
    check.refuse('options', `expected an object (got ${describeValue(options)})`)
  }
  const o: Record<string, unknown> = { ...kDefaults }
  check.unknownKeys(options ?? {}, Object.keys(kDefaults))
  for (const [key, value] of Object.entries(options ?? {})) {
    if (Object.hasOwn(kDefaults, key) && value !== undefined) o[key] = value
  }
  if (o.path !== undefined && (typeof o.path !== 'string' || o.path === '' || o.path.includes('\0'))) {
    check.add('path', `must be a non-empty string (got ${describeValue(o.path)})`)
  }
  if (o.format !== 'ndjson') check.add('format', `must be 'ndjson' (got ${describeValue(o.format)})`)
  check.boolean('fsync', o.fsync)
  check.throwIfAny()
  return o as unknown as ResolvedFileSenderOptions
}

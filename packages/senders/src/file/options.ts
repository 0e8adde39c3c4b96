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
 * field at once. Runs in the sender thread when the queue starts, so a bad
 * option makes `queue.start()` reject instead of failing every send later.
 */
export function resolveOptions(options: FileSenderOptions | undefined): ResolvedFileSenderOptions {
  if (options !== undefined && (typeof options !== 'object' || options === null || Array.isArray(options))) {
    throw new TypeError(`Invalid file sender options: expected an object (got ${describe(options)})`)
  }
  const o: Record<string, unknown> = { ...kDefaults }
  const issues: string[] = []
  for (const [key, value] of Object.entries(options ?? {})) {
    if (!Object.hasOwn(kDefaults, key)) issues.push(`${key}: unknown option`)
    else if (value !== undefined) o[key] = value
  }
  if (o.path !== undefined && (typeof o.path !== 'string' || o.path === '' || o.path.includes('\0'))) {
    issues.push(`path: must be a non-empty string (got ${describe(o.path)})`)
  }
  if (o.format !== 'ndjson') issues.push(`format: must be 'ndjson' (got ${describe(o.format)})`)
  if (typeof o.fsync !== 'boolean') issues.push(`fsync: must be a boolean (got ${describe(o.fsync)})`)
  if (issues.length > 0) throw new TypeError(`Invalid file sender options:\n  ${issues.join('\n  ')}`)
  return o as unknown as ResolvedFileSenderOptions
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'bigint') return `${value}n`
  if (typeof value === 'object' && value !== null) return Array.isArray(value) ? 'an array' : 'an object'
  return String(value)
}

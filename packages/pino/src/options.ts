import { createQueue, InvalidConfigError, type Queue, type QueueOptions } from '@vinequeue/core'

/**
 * Options of `vinequeueDestination`: the options of the queue it creates
 * (`createQueue`'s, e.g. `sender`, `wal`, `fullPolicy`), or `queue` — a queue
 * of yours — plus the destination's own.
 */
export interface VineQueueDestinationOptions extends QueueOptions {
  /**
   * A queue to write to instead of creating one: you start and stop it, and
   * no queue option may be given beside it. Default: the destination creates
   * a queue from the other options and starts it at once.
   */
  readonly queue?: Queue
  /**
   * Called, instead of throwing from the log call, when a line cannot be
   * enqueued (`QueueFullError` at the hard limit under `fullPolicy: 'block'`
   * or `'reject'`, `ItemTooLargeError`, `QueueClosedError` after `close()`,
   * `CircuitOpenError`). Default: none — the error is thrown from the log call.
   */
  readonly onWriteError?: (error: Error, line: string) => void
}

const kOwnKeys: ReadonlySet<string> = new Set(['queue', 'onWriteError'])

export interface ResolvedDestination {
  readonly queue: Queue
  /** The destination created the queue: it starts and stops it. */
  readonly owned: boolean
  readonly onWriteError: ((error: Error, line: string) => void) | undefined
}

/**
 * Validates the destination's options and creates its queue, reporting every
 * bad field — its own and the queue's — in one InvalidConfigError.
 */
export function resolveDestination(options: VineQueueDestinationOptions): ResolvedDestination {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidConfigError('Invalid pino destination options: options must be an object', {
      issues: ['options must be an object'],
    })
  }
  const issues: string[] = []
  const queueOptions: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(options)) {
    if (!kOwnKeys.has(key) && value !== undefined) queueOptions[key] = value
  }
  const { queue, onWriteError } = options
  if (onWriteError !== undefined && typeof onWriteError !== 'function') {
    issues.push(`onWriteError: must be a function (got ${describe(onWriteError)})`)
  }
  if (queue !== undefined) {
    const q = queue as Partial<Queue> | null
    if (
      typeof q !== 'object' ||
      q === null ||
      typeof q.enqueueRaw !== 'function' ||
      typeof q.flush !== 'function'
    ) {
      issues.push(`queue: must be a @vinequeue/core Queue (got ${describe(queue)})`)
    }
    const extra = Object.keys(queueOptions)
    if (extra.length > 0) issues.push(`queue: cannot be combined with queue options (${extra.join(', ')})`)
    if (issues.length > 0) throwIssues(issues)
    return { queue, owned: false, onWriteError }
  }
  let created: Queue | undefined
  try {
    created = createQueue(queueOptions as unknown as QueueOptions)
  } catch (err) {
    if (!(err instanceof InvalidConfigError)) throw err
    issues.push(...(err.issues ?? [err.message]))
  }
  if (issues.length > 0 || !created) throwIssues(issues)
  return { queue: created, owned: true, onWriteError }
}

function throwIssues(issues: string[]): never {
  throw new InvalidConfigError(`Invalid pino destination options:\n  - ${issues.join('\n  - ')}`, { issues })
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'function') return 'a function'
  if (typeof value === 'object' && value !== null) return Array.isArray(value) ? 'an array' : 'an object'
  return String(value)
}

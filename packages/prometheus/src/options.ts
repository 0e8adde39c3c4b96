import { InvalidConfigError } from '@vinequeue/core'
import { type Registry, register } from 'prom-client'

/** Options of `registerQueueMetrics`. */
export interface QueueMetricsOptions {
  /** Registry to register the metrics in. Default: prom-client's global `register`. */
  readonly registry?: Registry
  /**
   * Value of the `queue` label on every series of this queue; unique within a
   * registry (several queues share one set of metric families). Default `'default'`.
   */
  readonly queueName?: string
  /** Prefix of every metric name. Default `'vinequeue_'`. */
  readonly prefix?: string
  /**
   * Constant labels added to every series of this queue (e.g. `{ service: 'api' }`).
   * Names must be valid Prometheus label names and not one of `queue`, `reason`,
   * `state`, `le`. Default `{}`.
   */
  readonly labels?: Readonly<Record<string, string>>
}

export interface ResolvedQueueMetricsOptions {
  readonly registry: Registry
  readonly queueName: string
  readonly prefix: string
  readonly labels: Readonly<Record<string, string>>
}

const kDefaults: Readonly<Omit<ResolvedQueueMetricsOptions, 'registry'>> = Object.freeze({
  queueName: 'default',
  prefix: 'vinequeue_',
  labels: Object.freeze({}),
})

const kOptionKeys: ReadonlySet<string> = new Set(['registry', 'queueName', 'prefix', 'labels'])
/** Label names this package sets itself. */
export const kReservedLabels: ReadonlySet<string> = new Set(['queue', 'reason', 'state', 'le'])
const kMetricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const kLabelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/

/**
 * Merges `options` over the defaults and validates them, reporting every bad
 * field at once in one InvalidConfigError (as `createQueue` does).
 */
export function resolveOptions(options: QueueMetricsOptions | undefined): ResolvedQueueMetricsOptions {
  if (options !== undefined && (typeof options !== 'object' || options === null || Array.isArray(options))) {
    throw new InvalidConfigError(
      `Invalid queue metrics options: expected an object (got ${describe(options)})`,
      {
        issues: ['options must be an object'],
      },
    )
  }
  const o: Record<string, unknown> = { ...kDefaults, registry: register }
  const issues: string[] = []
  for (const [key, value] of Object.entries(options ?? {})) {
    if (!kOptionKeys.has(key)) issues.push(`${key}: unknown option`)
    else if (value !== undefined) o[key] = value
  }
  const registry = o.registry as { registerMetric?: unknown; getSingleMetric?: unknown } | null
  if (
    typeof registry !== 'object' ||
    registry === null ||
    typeof registry.registerMetric !== 'function' ||
    typeof registry.getSingleMetric !== 'function'
  ) {
    issues.push(`registry: must be a prom-client Registry (got ${describe(o.registry)})`)
  }
  if (typeof o.queueName !== 'string' || o.queueName === '') {
    issues.push(`queueName: must be a non-empty string (got ${describe(o.queueName)})`)
  }
  if (typeof o.prefix !== 'string' || (o.prefix !== '' && !kMetricName.test(o.prefix))) {
    issues.push(`prefix: must match ${kMetricName} or be '' (got ${describe(o.prefix)})`)
  }
  if (typeof o.labels !== 'object' || o.labels === null || Array.isArray(o.labels)) {
    issues.push(`labels: must be an object of label name → string (got ${describe(o.labels)})`)
  } else {
    for (const [name, value] of Object.entries(o.labels)) {
      if (!kLabelName.test(name) || name.startsWith('__')) {
        issues.push(`labels.${name}: not a valid Prometheus label name`)
      } else if (kReservedLabels.has(name)) {
        issues.push(`labels.${name}: set by this package (reserved: ${[...kReservedLabels].join(', ')})`)
      }
      if (typeof value !== 'string') issues.push(`labels.${name}: must be a string (got ${describe(value)})`)
    }
  }
  if (issues.length > 0) {
    throw new InvalidConfigError(`Invalid queue metrics options:\n  - ${issues.join('\n  - ')}`, { issues })
  }
  return o as unknown as ResolvedQueueMetricsOptions
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'bigint') return `${value}n`
  if (typeof value === 'function') return 'a function'
  if (typeof value === 'object' && value !== null) return Array.isArray(value) ? 'an array' : 'an object'
  return String(value)
}

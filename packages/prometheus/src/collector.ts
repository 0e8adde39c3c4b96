import { InvalidConfigError, type Queue } from '@vinequeue/core'
import type { Metric, Registry } from 'prom-client'
import { cumulativeBuckets, FAMILIES, type Family, type SampleLabels, type Snapshot } from './families.ts'
import type { ResolvedQueueMetricsOptions } from './options.ts'

interface Entry {
  readonly queue: Queue
  readonly labels: Readonly<Record<string, string>>
  readonly wal: boolean
  /** This scrape's reading, dropped in a microtask (see `snapshot`). */
  cached: Snapshot | undefined
}

interface Sample {
  readonly value: number
  readonly labels: Record<string, string | number>
  readonly metricName?: string
}

/**
 * One metric family as prom-client's Registry sees it: the same shape as its
 * own Counter / Gauge / Histogram (`name`, `help`, `type`, `aggregator`,
 * `get()`, `reset()`). `get()` is the collect-on-scrape: prom-client's own
 * Histogram can only observe samples one at a time, while the queue already
 * holds its histograms in shared memory, so the values are handed over whole.
 */
class QueueFamily {
  /** Assigned by prom-client in OpenMetrics mode (it strips `_total` from counter names). */
  name: string
  readonly help: string
  readonly type: Family['type']
  readonly aggregator = 'sum' as const
  readonly #collector: RegistryCollector
  readonly #family: Family

  constructor(collector: RegistryCollector, family: Family, name: string) {
    this.#collector = collector
    this.#family = family
    this.name = name
    this.help = family.help
    this.type = family.type
  }

  async get(): Promise<{ name: string; help: string; type: string; aggregator: 'sum'; values: Sample[] }> {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: this.#collector.samples(this.#family, this.name),
    }
  }

  /** Values are the queue's own counters: there is nothing here to reset. */
  reset(): void {}
}

/** The families of one prefix in one registry, shared by every queue registered there. */
export class RegistryCollector {
  readonly #registry: Registry
  readonly #prefix: string
  readonly #entries = new Map<string, Entry>()
  readonly #families: QueueFamily[]

  constructor(registry: Registry, prefix: string) {
    this.#registry = registry
    this.#prefix = prefix
    this.#families = FAMILIES.map((f) => new QueueFamily(this, f, prefix + f.name))
    const taken = this.#families.filter((f) => registry.getSingleMetric(f.name) !== undefined)
    if (taken.length > 0) {
      const issue = `prefix: ${taken.map((f) => f.name).join(', ')} already registered in this registry by something else`
      throw new InvalidConfigError(`Invalid queue metrics options:\n  - ${issue}`, { issues: [issue] })
    }
    // QueueFamily has the shape the registry reads (see above); prom-client's
    // Metric type is the union of its own classes, hence the cast.
    for (const f of this.#families) registry.registerMetric(f as unknown as Metric)
  }

  get size(): number {
    return this.#entries.size
  }

  add(queue: Queue, options: ResolvedQueueMetricsOptions): void {
    if (this.#entries.has(options.queueName)) {
      const issue = `queueName: ${JSON.stringify(options.queueName)} is already registered in this registry with prefix ${JSON.stringify(this.#prefix)}`
      throw new InvalidConfigError(`Invalid queue metrics options:\n  - ${issue}`, { issues: [issue] })
    }
    this.#entries.set(options.queueName, {
      queue,
      labels: options.labels,
      wal: queue.options.wal !== undefined,
      cached: undefined,
    })
  }

  delete(queueName: string): void {
    this.#entries.delete(queueName)
    if (this.#entries.size === 0) {
      for (const f of this.#families) this.#registry.removeSingleMetric(f.name)
    }
  }

  /**
   * A scrape calls every family's `get()` in one synchronous pass
   * (`registry.metrics()` maps them before its first await), so one reading
   * of each queue serves the whole scrape: dropped in a microtask, no timer.
   */
  #snapshot(entry: Entry): Snapshot {
    if (entry.cached) return entry.cached
    const cached = { metrics: entry.queue.metrics(), histograms: entry.queue.latencyHistograms() }
    entry.cached = cached
    queueMicrotask(() => {
      entry.cached = undefined
    })
    return cached
  }

  samples(family: Family, name: string): Sample[] {
    const out: Sample[] = []
    for (const [queueName, entry] of this.#entries) {
      if (family.wal && !entry.wal) continue
      const base = { ...entry.labels, queue: queueName }
      const snap = this.#snapshot(entry)
      if (family.type === 'histogram') {
        const h = family.pick(snap.histograms)
        for (const [le, count] of cumulativeBuckets(h)) {
          out.push({ metricName: `${name}_bucket`, labels: { ...base, le }, value: count })
        }
        out.push({ metricName: `${name}_sum`, labels: base, value: h.sumUs / 1e6 })
        out.push({ metricName: `${name}_count`, labels: base, value: h.count })
      } else {
        for (const [labels, value] of family.samples(snap.metrics)) {
          out.push({ labels: labels ? { ...base, ...(labels as SampleLabels) } : base, value })
        }
      }
    }
    return out
  }
}

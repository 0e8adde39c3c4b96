import type { Queue } from '@vinequeue/core'
import type { Registry } from 'prom-client'
import { RegistryCollector } from './collector.ts'
import { type QueueMetricsOptions, resolveOptions } from './options.ts'

/** What `registerQueueMetrics` returns. */
export interface QueueMetricsRegistration {
  /** The `queue` label value of this queue's series. */
  readonly queueName: string
  /**
   * Stops exporting this queue's series; the families leave the registry with
   * the last queue registered in it. Idempotent.
   */
  unregister(): void
}

const collectors = new WeakMap<Registry, Map<string, RegistryCollector>>()

/**
 * Exports `queue`'s metrics through a prom-client Registry: counters, gauges
 * and the send-latency and WAL fsync histograms, read from the queue's shared
 * memory when the registry is scraped (no timer, nothing per item). Several
 * queues can share a registry under different `queueName`s.
 *
 * @throws InvalidConfigError listing every bad option, a `queueName` already
 *   registered there, or metric names already taken by another collector.
 */
export function registerQueueMetrics(queue: Queue, options?: QueueMetricsOptions): QueueMetricsRegistration {
  const resolved = resolveOptions(options)
  let byPrefix = collectors.get(resolved.registry)
  if (!byPrefix) {
    byPrefix = new Map()
    collectors.set(resolved.registry, byPrefix)
  }
  const collector = byPrefix.get(resolved.prefix) ?? new RegistryCollector(resolved.registry, resolved.prefix)
  collector.add(queue, resolved)
  byPrefix.set(resolved.prefix, collector)
  let registered = true
  return {
    queueName: resolved.queueName,
    unregister(): void {
      if (!registered) return
      registered = false
      collector.delete(resolved.queueName)
      if (collector.size === 0) byPrefix.delete(resolved.prefix)
    },
  }
}

import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  createQueue,
  InvalidConfigError,
  type LatencyHistogram,
  type Metrics,
  type Queue,
} from '@vinequeue/core'
import { Gauge, Registry } from 'prom-client'
import { afterEach, describe, expect, it } from 'vitest'
import { registerQueueMetrics } from '../src/index.ts'
import { type Family, parsePrometheusText } from './text-format.ts'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

/** A real /metrics endpoint serving `registry`. */
async function serve(registry: Registry): Promise<string> {
  const server: Server = createServer(async (req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end()
      return
    }
    res.setHeader('content-type', registry.contentType)
    res.end(await registry.metrics())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`
}

async function scrape(url: string): Promise<Map<string, Family>> {
  const res = await fetch(url)
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
  return parsePrometheusText(await res.text())
}

function value(families: Map<string, Family>, name: string, labels: Record<string, string>): number {
  const family = families.get(name) ?? families.get(name.replace(/_(count|sum|bucket)$/, ''))
  if (!family) throw new Error(`no family for ${name}`)
  const matches = family.samples.filter(
    (s) =>
      s.name === name &&
      Object.keys(s.labels).length === Object.keys(labels).length &&
      Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  )
  if (matches.length !== 1) throw new Error(`${name}${JSON.stringify(labels)}: ${matches.length} samples`)
  return matches[0]!.value
}

/**
 * Waits (bounded) until two readings of the queue 150 ms apart are equal:
 * after drain() some values still settle (the pipeline publishes its item
 * count lazily; the WAL writes its watermark and deletes delivered segments
 * in the background), and the scrape must be compared with a reading of the
 * same state.
 */
async function settled(queue: Queue): Promise<void> {
  const read = (): string => JSON.stringify([queue.metrics(), queue.latencyHistograms()])
  const deadline = Date.now() + 20_000
  let last = read()
  for (;;) {
    await new Promise((r) => setTimeout(r, 150))
    const now = read()
    if (now === last) return
    if (Date.now() > deadline) throw new Error('queue metrics did not settle')
    last = now
  }
}

/** Every scalar series of a queue, as `queue.metrics()` names it (written out, not derived from the package). */
function expectedScalars(m: Metrics, wal: boolean): Array<[string, Record<string, string>, number]> {
  const rows: Array<[string, Record<string, string>, number]> = [
    ['vinequeue_enqueued_items_total', {}, m.enqueuedTotal],
    ['vinequeue_sent_items_total', {}, m.sentTotal],
    ['vinequeue_batches_sent_total', {}, m.batchesSentTotal],
    ['vinequeue_send_errors_total', {}, m.errorsTotal],
    ['vinequeue_retries_total', {}, m.retriesTotal],
    ['vinequeue_send_timeouts_total', {}, m.timeoutsTotal],
    ['vinequeue_sender_failures_total', {}, m.senderFailuresTotal],
    ['vinequeue_dead_lettered_items_total', {}, m.deadLetteredTotal],
    ['vinequeue_rejected_items_total', {}, m.rejectedTotal],
    ['vinequeue_paced_enqueues_total', {}, m.pacedTotal],
    ['vinequeue_dropped_items_total', { reason: 'dropNewest' }, m.droppedByReason.dropNewest],
    ['vinequeue_dropped_items_total', { reason: 'dropOldest' }, m.droppedByReason.dropOldest],
    ['vinequeue_dropped_items_total', { reason: 'wal' }, m.droppedByReason.wal],
    ['vinequeue_circuit_opens_total', {}, m.circuitOpensTotal],
    ['vinequeue_circuit_transitions_total', {}, m.circuitTransitionsTotal],
    ['vinequeue_circuit_probes_total', {}, m.circuitProbesTotal],
    ['vinequeue_circuit_state', { state: 'closed' }, m.circuitState === 'closed' ? 1 : 0],
    ['vinequeue_circuit_state', { state: 'open' }, m.circuitState === 'open' ? 1 : 0],
    ['vinequeue_circuit_state', { state: 'half-open' }, m.circuitState === 'half-open' ? 1 : 0],
    ['vinequeue_memory_queue_items', {}, m.memoryQueueSize],
    ['vinequeue_memory_queue_bytes', {}, m.memoryQueueBytes],
    ['vinequeue_in_flight_batches', {}, m.inFlightBatches],
    ['vinequeue_retrying_batches', {}, m.retryingBatches],
    ['vinequeue_concurrency_limit_batches', {}, m.concurrencyLimit],
    ['vinequeue_batch_size_items', {}, m.batchSize],
    ['vinequeue_backoff_seconds', {}, m.backoffMs / 1000],
    ['vinequeue_producer_lanes', {}, m.lanes],
  ]
  if (wal) {
    rows.push(
      ['vinequeue_wal_size_bytes', {}, m.walSize],
      ['vinequeue_wal_pending_items', {}, m.walPendingItems],
      ['vinequeue_wal_full', {}, m.walFull ? 1 : 0],
      ['vinequeue_wal_recovering', {}, m.recovering ? 1 : 0],
      ['vinequeue_wal_recovered_items_total', {}, m.recoveredTotal],
      ['vinequeue_wal_spilled_items_total', {}, m.walSpilledTotal],
      ['vinequeue_wal_corrupt_regions_total', {}, m.walCorruptRegions],
      ['vinequeue_wal_gaps_total', {}, m.walGapsTotal],
      ['vinequeue_wal_quarantined_total', {}, m.walQuarantinedTotal],
      ['vinequeue_wal_stalled', {}, m.walStalled ? 1 : 0],
    )
  }
  return rows
}

/** Checks a scraped histogram series against the queue's own buckets, bound by bound. */
function checkHistogram(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string>,
  h: LatencyHistogram,
): Array<[le: number, cumulative: number]> {
  const family = families.get(name)!
  expect(family.type).toBe('histogram')
  const buckets = family.samples
    .filter((s) => s.name === `${name}_bucket` && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .map(
      (s) =>
        [s.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.labels.le), s.value] as [
          number,
          number,
        ],
    )
  expect(buckets.length).toBe(27)
  for (const [le, cumulative] of buckets) {
    // Queue buckets whose (exclusive) upper bound is at most le, in µs.
    let expected = 0
    h.counts.forEach((n, b) => {
      if (h.upperBoundsUs[b]! <= le * 1e6 * (1 + 1e-12)) expected += n
    })
    expect(cumulative, `${name} le=${le}`).toBe(expected)
  }
  expect(value(families, `${name}_count`, labels)).toBe(h.count)
  expect(value(families, `${name}_sum`, labels)).toBeCloseTo(h.sumUs / 1e6, 9)
  return buckets
}

describe('registerQueueMetrics', () => {
  it('serves on /metrics, after a known workload, what queue.metrics() reports, for two queues in one registry', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vq-prom-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    let calls = 0
    const letters: unknown[] = []
    // 1000 events in batches of 100: the first send attempt fails (retried),
    // and event 500 is refused for good (dead-lettered).
    const orders = createQueue({
      maxBatchSize: 100,
      flushIntervalMs: 5,
      retryInitialDelayMs: 1,
      wal: { dir },
      onDeadLetter: (d) => letters.push(d),
      send: async (batch) => {
        if (calls++ === 0) throw new Error('target unavailable')
        const items = batch.items() as Array<{ id: number }>
        const index = items.findIndex((item) => item.id === 500)
        return index === -1 ? undefined : { failed: [{ index, retryable: false, reason: 'refused' }] }
      },
    })
    const audit = createQueue({ maxBatchSize: 50, flushIntervalMs: 5, send: async () => {} })
    cleanups.push(async () => {
      await orders.stop()
      await audit.stop()
    })
    const registry = new Registry()
    registerQueueMetrics(orders, { registry, queueName: 'orders', labels: { service: 'api' } })
    registerQueueMetrics(audit, { registry, queueName: 'audit' })
    const url = await serve(registry)
    await Promise.all([orders.start(), audit.start()])

    for (let id = 0; id < 1000; id++) orders.enqueue({ id, event: 'order' })
    for (let id = 0; id < 120; id++) audit.enqueue({ id })
    await Promise.all([orders.drain(), audit.drain()])
    await Promise.all([settled(orders), settled(audit)])

    const families = await scrape(url)
    const queues: Array<[Queue, Record<string, string>, boolean]> = [
      [orders, { queue: 'orders', service: 'api' }, true],
      [audit, { queue: 'audit' }, false],
    ]
    for (const [queue, labels, wal] of queues) {
      const m = queue.metrics()
      for (const [name, extra, expected] of expectedScalars(m, wal)) {
        expect(value(families, name, { ...labels, ...extra }), `${name} ${labels.queue}`).toBe(expected)
      }
      const h = queue.latencyHistograms()
      const send = checkHistogram(families, 'vinequeue_send_duration_seconds', labels, h.send)
      // metrics()'s p99 comes from the same buckets: it lies under the first bound holding 99%.
      const p99Bound = send.find(([, n]) => n >= Math.ceil(h.send.count * 0.99))![0]
      expect(m.sendLatencyP99 / 1000).toBeLessThanOrEqual(p99Bound)
      if (wal) {
        checkHistogram(families, 'vinequeue_wal_fsync_duration_seconds', labels, h.walSync)
        expect(h.walSync.count).toBe(m.fsyncsTotal)
        expect(m.fsyncsTotal).toBeGreaterThan(0)
      }
    }
    // The workload itself, as the exposition shows it.
    const o = { queue: 'orders', service: 'api' }
    expect(value(families, 'vinequeue_enqueued_items_total', o)).toBe(1000)
    expect(value(families, 'vinequeue_sent_items_total', o)).toBe(999)
    expect(value(families, 'vinequeue_dead_lettered_items_total', o)).toBe(1)
    expect(letters).toHaveLength(1)
    expect(value(families, 'vinequeue_retries_total', o)).toBeGreaterThanOrEqual(1)
    expect(value(families, 'vinequeue_send_errors_total', o)).toBeGreaterThanOrEqual(1)
    expect(value(families, 'vinequeue_send_duration_seconds_count', o)).toBeGreaterThanOrEqual(11)
    expect(value(families, 'vinequeue_enqueued_items_total', { queue: 'audit' })).toBe(120)
    expect(value(families, 'vinequeue_sent_items_total', { queue: 'audit' })).toBe(120)
    // A queue without a WAL has no WAL series; the family is there for the other.
    expect(families.get('vinequeue_wal_size_bytes')!.samples.map((s) => s.labels.queue)).toEqual(['orders'])
    for (const family of families.values()) {
      expect(family.help).not.toBe('')
      if (family.type === 'counter') expect(family.name).toMatch(/_total$/)
    }

    // Read at scrape time: more work shows up at the next scrape, no timer involved.
    for (let id = 0; id < 30; id++) audit.enqueue({ id })
    await audit.drain()
    await settled(audit)
    const again = await scrape(url)
    expect(value(again, 'vinequeue_sent_items_total', { queue: 'audit' })).toBe(150)
    expect(value(again, 'vinequeue_sent_items_total', o)).toBe(999)
  })

  it('unregister() removes a queue’s series, and the families with the last queue', async () => {
    const a = createQueue({ send: async () => {} })
    const b = createQueue({ send: async () => {} })
    cleanups.push(async () => {
      await a.stop()
      await b.stop()
    })
    const registry = new Registry()
    const ra = registerQueueMetrics(a, { registry, queueName: 'a' })
    const rb = registerQueueMetrics(b, { registry, queueName: 'b' })
    ra.unregister()
    ra.unregister()
    let families = parsePrometheusText(await registry.metrics())
    expect(families.get('vinequeue_enqueued_items_total')!.samples.map((s) => s.labels.queue)).toEqual(['b'])
    // The name is free again.
    registerQueueMetrics(a, { registry, queueName: 'a' }).unregister()
    rb.unregister()
    families = parsePrometheusText(await registry.metrics())
    expect(families.size).toBe(0)
  })

  it('reports every bad option at once in one InvalidConfigError', () => {
    const q = createQueue({ send: async () => {} })
    cleanups.push(async () => {
      await q.stop()
    })
    let error: unknown
    try {
      registerQueueMetrics(q, {
        registry: {} as Registry,
        queueName: '',
        prefix: '1x',
        labels: { queue: 'x', 'bad-name': 'y', ok: 3 as unknown as string },
        nope: true,
      } as Parameters<typeof registerQueueMetrics>[1])
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(InvalidConfigError)
    const issues = (error as InvalidConfigError).issues!
    expect(issues).toHaveLength(7)
    for (const field of [
      'nope',
      'registry',
      'queueName',
      'prefix',
      'labels.queue',
      'labels.bad-name',
      'labels.ok',
    ]) {
      expect(
        issues.some((i) => i.startsWith(`${field}:`)),
        field,
      ).toBe(true)
    }
  })

  it('refuses a queueName already registered, and names already taken in the registry', () => {
    const q = createQueue({ send: async () => {} })
    cleanups.push(async () => {
      await q.stop()
    })
    const registry = new Registry()
    registerQueueMetrics(q, { registry, queueName: 'x' })
    expect(() => registerQueueMetrics(q, { registry, queueName: 'x' })).toThrow(InvalidConfigError)
    const other = new Registry()
    other.registerMetric(new Gauge({ name: 'mine_sent_items_total', help: 'h', registers: [] }))
    expect(() => registerQueueMetrics(q, { registry: other, prefix: 'mine_' })).toThrow(/already registered/)
  })
})

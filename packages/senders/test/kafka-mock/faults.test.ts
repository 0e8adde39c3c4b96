import { setTimeout as sleep } from 'node:timers/promises'
import { createQueue, type DeadLetter, type Queue } from '@vinequeue/core'
import { type MockCluster, type MockRecord, startMockCluster } from '@vinequeue/kafka-mock'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type Fault, FaultProxy } from './fault-proxy.ts'

// Faults between the Kafka sender and librdkafka's mock cluster, for ~2 s in
// the middle of a run, through a test-only TCP proxy: connections closed
// (and refused) for the whole window, answers dropped (the broker wrote the
// records; the client never hears so), or both directions stalled. At least
// once: no item is ever lost, idempotent or not.
//
// Duplicates are not measured here: the mock checks the sequence numbers of
// transactional producers only (rd_kafka_mock_validate_records returns early
// without a transactional id), so it writes every re-send of an idempotent
// producer's batch, even under the same producer id and sequence numbers.
// Deduplication across the client's and the queue's retries is tested
// against the stand-in, which checks them as Kafka does
// (kafka-failures.test.ts, kafka-idempotent-queue-retry.regression.test.ts).
let cluster: MockCluster
let proxy: FaultProxy | undefined
const queues: Queue[] = []
beforeAll(async () => {
  cluster = await startMockCluster(3)
})
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.stop({ timeoutMs: 2000 })))
  await proxy?.close()
  expect(proxy?.problems ?? []).toEqual([])
  proxy = undefined
})
afterAll(async () => {
  await cluster?.close()
})

const N = 2000

/** Enqueues N keyed items over ~3 s with `fault` on from ~0.6 s to ~2.6 s; resolves once drained. */
async function run(
  fault: Fault | undefined,
  idempotent: boolean,
): Promise<{ records: MockRecord[]; queue: Queue }> {
  const { name: topic } = await cluster.topic()
  proxy = await FaultProxy.start(cluster.brokers)
  const letters: DeadLetter[] = []
  const q = createQueue({
    sender: {
      module: '@vinequeue/senders/kafka',
      options: {
        brokers: proxy.brokers,
        topic,
        idempotent,
        key: 'k',
        // A request unanswered for 1 s fails (then the client's retries, then the queue's).
        requestTimeoutMs: 1000,
        connectTimeoutMs: 1000,
        // Idempotent: the client's own retries span 3 s, longer than the outage.
        ...(idempotent ? { retries: 12, retryDelayMs: 250 } : {}),
      },
    },
    senderThreads: 1,
    senderConcurrency: 2,
    maxBatchSize: 50,
    maxInFlightBatches: 1,
    flushIntervalMs: 10,
    retryInitialDelayMs: 20,
    retryMaxDelayMs: 200,
    sendTimeoutMs: 15_000,
    onDeadLetter: (d) => letters.push(d),
  })
  queues.push(q)
  await q.start()
  const started = Date.now()
  let faultOn = false
  let faultOff = false
  for (let id = 0; id < N; id++) {
    q.enqueue({ id, k: `key-${id % 7}` })
    if (id % 40 === 39) await sleep(60)
    const t = Date.now() - started
    if (fault && !faultOn && t >= 600) {
      faultOn = true
      proxy.fault = fault
    }
    if (faultOn && !faultOff && t >= 2600) {
      faultOff = true
      proxy.fault = 'none'
    }
  }
  if (fault && !faultOn) proxy.fault = fault
  if (fault && !faultOff) {
    await sleep(2000)
    proxy.fault = 'none'
  }
  await q.drain()
  expect(letters.map((d) => d.reason)).toEqual([])
  return { records: await cluster.read(topic), queue: q }
}

function ids(records: readonly MockRecord[]): number[] {
  return records.map((r) => JSON.parse(r.value!.toString('utf8')).id as number)
}

function missing(records: readonly MockRecord[]): number[] {
  const seen = new Set(ids(records))
  return Array.from({ length: N }, (_, i) => i).filter((i) => !seen.has(i))
}

function duplicates(records: readonly MockRecord[]): number {
  return records.length - new Set(ids(records)).size
}

const FAULTS: Array<[string, Fault]> = [
  ['connections closed and refused', 'refuse'],
  ['answers dropped', 'drop-answers'],
  ['both directions stalled', 'stall'],
]

describe("Kafka sender faults against librdkafka's mock, through a TCP proxy", () => {
  it('without a fault, every request passes through the proxy (Metadata rewritten to it)', async () => {
    const { records } = await run(undefined, false)
    expect(missing(records)).toEqual([])
    expect(duplicates(records)).toBe(0)
    // Produce answers (API key 0) came through the proxy, one per partition leader per batch at least.
    expect(proxy!.answered.get(0) ?? 0).toBeGreaterThanOrEqual(N / 50)
  })

  describe.each(FAULTS)('%s for ~2 s mid-run', (_name, fault) => {
    it.each([false, true])('idempotent %s: no item lost', async (idempotent) => {
      const { records, queue } = await run(fault, idempotent)
      expect(missing(records)).toEqual([])
      expect(queue.metrics().sentTotal).toBe(N)
      expect(queue.metrics().deadLetteredTotal).toBe(0)
    })
  })
})

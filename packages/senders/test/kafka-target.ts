import { randomUUID } from 'node:crypto'
import { Admin, Consumer, MessagesStreamModes } from '@platformatic/kafka'
import { createQueue, type Queue, type QueueOptions } from '@vinequeue/core'
import type { KafkaSenderOptions } from '@vinequeue/senders/kafka'
import { afterEach, beforeEach, expect } from 'vitest'
import { KafkaBroker } from './kafka-broker/index.ts'

/**
 * Where the Kafka tests deliver: the in-process broker stand-in, or — when
 * VINEQUEUE_KAFKA_BROKERS is set (`host:port[,host:port…]`) — a real
 * cluster, read back with the client's Consumer.
 */
export const REAL_BROKERS: string[] | undefined = process.env.VINEQUEUE_KAFKA_BROKERS?.split(',')
  .map((s) => s.trim())
  .filter(Boolean)

/** A record as read back, the same shape from either target. */
export interface ReadRecord {
  readonly partition: number
  readonly offset: number
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly headers: ReadonlyArray<readonly [string, Buffer | null]>
  /** Codec of its record batch (stand-in only: a consumer never sees it). */
  readonly compression: string | undefined
}

export interface Target {
  readonly real: boolean
  readonly brokers: string[]
  /** The stand-in, when that is the target. */
  readonly broker: KafkaBroker | undefined
  /** A fresh topic with `partitions` partitions. */
  topic(partitions: number): Promise<string>
  /**
   * The records of `topic`, in partition then offset order. From the
   * stand-in: what it holds now. From a real cluster: consumed until `count`
   * records arrived (or 10 s passed).
   */
  read(topic: string, count: number): Promise<ReadRecord[]>
  close(): Promise<void>
}

export async function openTarget(): Promise<Target> {
  return REAL_BROKERS ? realTarget(REAL_BROKERS) : standInTarget()
}

const byPosition = (a: ReadRecord, b: ReadRecord): number => a.partition - b.partition || a.offset - b.offset

async function standInTarget(): Promise<Target> {
  const broker = await KafkaBroker.start()
  return {
    real: false,
    brokers: [broker.address],
    broker,
    async topic(partitions) {
      const name = `vq-${randomUUID()}`
      broker.createTopic(name, partitions)
      return name
    },
    async read(topic) {
      return broker.recordsOf(topic).sort(byPosition)
    },
    close: () => broker.close(),
  }
}

async function realTarget(brokers: string[]): Promise<Target> {
  const admin = new Admin({ clientId: 'vinequeue-test-admin', bootstrapBrokers: brokers })
  const topics: string[] = []
  return {
    real: true,
    brokers,
    broker: undefined,
    async topic(partitions) {
      const name = `vq-test-${randomUUID()}`
      await admin.createTopics({ topics: [name], partitions, replicas: 1 })
      topics.push(name)
      return name
    },
    async read(topic, count) {
      const consumer = new Consumer({
        clientId: 'vinequeue-test-reader',
        bootstrapBrokers: brokers,
        groupId: `vq-test-${randomUUID()}`,
        maxWaitTime: 200,
      })
      const out: ReadRecord[] = []
      const stream = await consumer.consume({
        topics: [topic],
        mode: MessagesStreamModes.EARLIEST,
        autocommit: false,
      })
      try {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, 10_000) // the assertions then show what is missing
          stream.on('error', reject)
          stream.on('data', (m) => {
            out.push({
              partition: m.partition,
              offset: Number(m.offset),
              key: m.key ?? null,
              value: m.value ?? null,
              headers: [...m.headers].map(([k, v]) => [k.toString('utf8'), v] as const),
              compression: undefined,
            })
            if (out.length >= count) {
              clearTimeout(timer)
              resolve()
            }
          })
        })
      } finally {
        await stream.close()
        await consumer.close(true)
      }
      return out.sort(byPosition)
    },
    async close() {
      if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => {})
      await admin.close()
    },
  }
}

/** The sender, loaded BY PACKAGE NAME from dist into the queue's sender pool. */
export const SENDER = '@vinequeue/senders/kafka'

export interface Harness {
  /** This test's target (fresh per test). */
  readonly target: Target
  /** A started-later queue sending to `target` with the Kafka sender; stopped after the test. */
  queue(sender: Partial<KafkaSenderOptions>, extra?: Partial<QueueOptions>): Queue
  /** Stops `q` after the test. */
  track(q: Queue): Queue
}

/**
 * Registers the hooks of a Kafka test file: a fresh target per test, every
 * queue stopped after it, and — on the stand-in — no protocol problems: every
 * request the client sent was one the stand-in implements, and every record
 * batch decoded (CRC-32C, codec, record framing).
 */
export function useTarget(): Harness {
  let target: Target | undefined
  const queues: Queue[] = []
  beforeEach(async () => {
    target = await openTarget()
  })
  afterEach(async () => {
    await Promise.all(queues.splice(0).map((q) => q.stop({ timeoutMs: 2000 })))
    const problems = target?.broker?.problems ?? []
    await target?.close()
    expect(problems).toEqual([])
  })
  const track = (q: Queue): Queue => {
    queues.push(q)
    return q
  }
  return {
    get target() {
      return target!
    },
    track,
    queue(sender, extra = {}) {
      return track(
        createQueue({
          sender: { module: SENDER, options: { brokers: target!.brokers, ...sender } },
          senderThreads: 1,
          senderConcurrency: 2,
          maxBatchSize: 100,
          flushIntervalMs: 10,
          retryInitialDelayMs: 5,
          retryMaxDelayMs: 20,
          sendTimeoutMs: 15_000,
          ...extra,
        }),
      )
    },
  }
}

/** A record's value parsed as JSON. */
export const json = (r: ReadRecord): any => JSON.parse(r.value!.toString('utf8'))

export const text = (b: Buffer | null): string | null => (b === null ? null : b.toString('utf8'))

/** `records` are the items with ids 0…n-1 (any order), each exactly once. */
export function expectEachOnce(records: readonly ReadRecord[], n: number): void {
  const ids = records.map((r) => json(r).id as number)
  expect(ids).toHaveLength(n)
  expect(new Set(ids).size).toBe(n)
}

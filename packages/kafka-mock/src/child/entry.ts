// librdkafka's mock Kafka cluster, in a process of its own: node-rdkafka is a
// native addon built for one Node ABI, and librdkafka's threads should never
// share a test worker or the bench's process. Forked by cluster.ts with the
// Node node-rdkafka was built for (argv[2]: the broker count); it talks to its
// parent in protocol.ts messages.
//
// Setting `test.mock.num.brokers` on any librdkafka client starts the mock
// cluster inside that client; with `debug: 'mock'` its log carries
// `Mock cluster … bootstrap.servers=127.0.0.1:PORT,…`. The mock auto-creates a
// topic (4 partitions, its default) on the first Metadata request naming it:
// node-rdkafka does not expose rd_kafka_mock_topic_create, and the mock does
// not implement CreateTopics.

import { createRequire } from 'node:module'
import type * as RdKafka from 'node-rdkafka'
import type { FromMock, MockAnswer, ToMock, WireRecord } from '../protocol.ts'

const require = createRequire(import.meta.url)
const brokers = Number(process.argv[2] ?? 3)

function post(msg: FromMock): void {
  process.send!(msg)
}

function fail(reason: string): never {
  post({ __kafkaMock: 1, type: 'failed', reason })
  process.exit(1)
}

let Kafka: typeof RdKafka
try {
  // Loaded here rather than imported so that an addon built for another Node
  // becomes a `failed` message with the reason, not a crash without one.
  Kafka = require('node-rdkafka')
} catch (err) {
  fail(
    `node-rdkafka does not load under Node ${process.version} (${process.execPath}): ${(err as Error)?.message ?? err}`,
  )
}

const cb = <T>(fn: (done: (err: unknown, v: T) => void) => void): Promise<T> =>
  new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))))

// Not in node-rdkafka's typed configuration: passed through a plain object
// (no excess-property check) to librdkafka, which knows it.
const mock: Record<string, unknown> = { 'test.mock.num.brokers': brokers }
// The client that hosts the mock cluster; also used for metadata and watermarks.
const host = new Kafka.Producer({
  ...mock,
  debug: 'mock',
  event_cb: true,
  'client.id': 'vinequeue-mock-host',
  'allow.auto.create.topics': true,
})
let bootstrap: string | undefined
const found = new Promise<void>((resolve) => {
  host.on('event.log', (log: { message: string }) => {
    const m = /bootstrap\.servers=(\S+)/.exec(log.message)
    if (m && !bootstrap) {
      bootstrap = m[1]
      resolve()
    }
  })
})
const startup = setTimeout(
  () => fail('the mock cluster did not log its bootstrap.servers within 20 s'),
  20_000,
)
host.connect({ timeout: 20_000 }, (err) => {
  if (err) fail(`the mock cluster's host client did not connect: ${err.message}`)
})
await found
await new Promise<void>((resolve) => (host.isConnected() ? resolve() : host.once('ready', () => resolve())))
clearTimeout(startup)

const consumer = new Kafka.KafkaConsumer(
  {
    'metadata.broker.list': bootstrap!,
    'group.id': 'vinequeue-mock-reader',
    'client.id': 'vinequeue-mock-reader',
    'enable.auto.commit': false,
    // Every record batch's CRC-32C is verified: a corrupt batch is an error, not data.
    'check.crcs': true,
  },
  { 'auto.offset.reset': 'earliest' },
)
await cb<RdKafka.Metadata>((done) => consumer.connect({ timeout: 20_000 }, done))

async function partitionsOf(topic: string): Promise<number> {
  // A Metadata request for the topic creates it (the mock's auto-create).
  const deadline = Date.now() + 10_000
  for (;;) {
    const md = await cb<RdKafka.Metadata>((done) => host.getMetadata({ topic, timeout: 5000 }, done))
    const t = md.topics.find((x) => x.name === topic)
    if (t && t.partitions.length > 0) return t.partitions.length
    if (Date.now() > deadline) throw new Error(`topic ${topic} was not created by the mock`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/**
 * Each partition's high watermark: the offset the next record would get, so
 * the count of records ever appended. It keeps counting when the mock drops
 * a partition's oldest record batches (it keeps at most 5 MB or 100,000
 * batches per partition, its own default).
 */
async function watermarks(topic: string): Promise<number[]> {
  const n = await partitionsOf(topic)
  const high: number[] = []
  for (let p = 0; p < n; p++) {
    const w = await cb<RdKafka.WatermarkOffsets>((done) => host.queryWatermarkOffsets(topic, p, 5000, done))
    high.push(w.highOffset)
  }
  return high
}

const b64 = (v: Buffer | string | null | undefined): string | null =>
  v == null ? null : Buffer.from(v).toString('base64')

/**
 * Every record of `topic`: each partition read from offset 0 up to its high
 * watermark at the time of the call, through librdkafka's consumer (CRC and
 * codec checks). Anything the consumer reports as an error fails the read.
 */
async function read(topic: string, timeoutMs: number): Promise<WireRecord[]> {
  const high = await watermarks(topic)
  const next = high.map(() => 0)
  const records: WireRecord[] = []
  const wanted = high.reduce((a, b) => a + b, 0)
  if (wanted === 0) return records
  consumer.assign(high.map((_, partition) => ({ topic, partition, offset: 0 })))
  const deadline = Date.now() + timeoutMs
  try {
    while (next.some((o, p) => o < high[p]!)) {
      if (Date.now() > deadline) {
        throw new Error(
          `read ${topic}: offsets ${JSON.stringify(next)} of ${JSON.stringify(high)} after ${timeoutMs} ms`,
        )
      }
      const batch = await cb<RdKafka.Message[]>((done) => consumer.consume(500, done))
      for (const m of batch) {
        if (m.topic !== topic || m.offset >= high[m.partition]!) continue
        next[m.partition] = m.offset + 1
        records.push({
          partition: m.partition,
          offset: m.offset,
          key: b64(m.key),
          value: b64(m.value),
          headers: (m.headers ?? []).flatMap((h) => Object.entries(h).map(([k, v]) => [k, b64(v)] as const)),
        })
      }
    }
  } finally {
    consumer.unassign()
  }
  return records
}

async function answer(msg: Exclude<ToMock, { type: 'close' }>): Promise<MockAnswer> {
  switch (msg.type) {
    case 'topic':
      return { __kafkaMock: 1, type: 'topic', id: msg.id, partitions: await partitionsOf(msg.topic) }
    case 'watermarks':
      return { __kafkaMock: 1, type: 'watermarks', id: msg.id, high: await watermarks(msg.topic) }
    case 'read':
      return { __kafkaMock: 1, type: 'read', id: msg.id, records: await read(msg.topic, msg.timeoutMs) }
    default: {
      const unknown: never = msg
      throw new Error(`unknown request ${JSON.stringify(unknown)}`)
    }
  }
}

process.on('message', async (msg: ToMock) => {
  if (msg?.__kafkaMock !== 1) return
  if (msg.type === 'close') {
    consumer.disconnect(() => host.disconnect(() => process.exit(0)))
    setTimeout(() => process.exit(0), 5000).unref()
    return
  }
  try {
    post(await answer(msg))
  } catch (err) {
    post({ __kafkaMock: 1, type: 'error', id: msg.id, error: String((err as Error)?.stack ?? err) })
  }
})
// The parent going away ends the cluster.
process.on('disconnect', () => process.exit(0))
post({ __kafkaMock: 1, type: 'ready', bootstrap: bootstrap!, librdkafka: Kafka.librdkafkaVersion })

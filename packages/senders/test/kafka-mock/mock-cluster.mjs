// librdkafka's mock Kafka cluster, in a process of its own: node-rdkafka is a
// native addon built for one Node ABI, and librdkafka's threads should never
// share a vitest worker. Started by cluster.ts with the Node node-rdkafka was
// built for; it talks to its parent over the IPC channel in JSON (the two
// Nodes may differ, so no structured clone), Buffers as base64.
//
// Setting `test.mock.num.brokers` on any librdkafka client starts the mock
// cluster inside that client; with `debug: 'mock'` its log carries
// `Mock cluster … bootstrap.servers=127.0.0.1:PORT,…`. The mock auto-creates a
// topic (4 partitions, its default) on the first Metadata request naming it:
// node-rdkafka does not expose rd_kafka_mock_topic_create, and the mock does
// not implement CreateTopics.
//
// parent → child: { id, op: 'topic', topic }            → { id, partitions }
//                 { id, op: 'read', topic, timeoutMs }  → { id, records }
//                 { op: 'close' }
// child → parent: { type: 'ready', bootstrap, librdkafka } or { type: 'failed', reason }

import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const brokers = Number(process.argv[2] ?? 3)

function fail(reason) {
  process.send?.({ type: 'failed', reason })
  process.exit(1)
}

let Kafka
try {
  Kafka = require('node-rdkafka')
} catch (err) {
  fail(
    `node-rdkafka does not load under Node ${process.version} (${process.execPath}): ${err?.message ?? err}`,
  )
}

const cb = (fn) => new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))))

// The client that hosts the mock cluster; also used for metadata and watermarks.
const host = new Kafka.Producer({
  'test.mock.num.brokers': brokers,
  debug: 'mock',
  event_cb: true,
  'client.id': 'vinequeue-mock-host',
  'allow.auto.create.topics': true,
})
let bootstrap
const found = new Promise((resolve) => {
  host.on('event.log', (log) => {
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
await new Promise((resolve) => (host.isConnected() ? resolve() : host.once('ready', resolve)))
clearTimeout(startup)

const consumer = new Kafka.KafkaConsumer(
  {
    'metadata.broker.list': bootstrap,
    'group.id': 'vinequeue-mock-reader',
    'client.id': 'vinequeue-mock-reader',
    'enable.auto.commit': false,
    // Every record batch's CRC-32C is verified: a corrupt batch is an error, not data.
    'check.crcs': true,
  },
  { 'auto.offset.reset': 'earliest' },
)
await cb((done) => consumer.connect({ timeout: 20_000 }, done))

async function partitionsOf(topic) {
  // A Metadata request for the topic creates it (the mock's auto-create).
  const deadline = Date.now() + 10_000
  for (;;) {
    const md = await cb((done) => host.getMetadata({ topic, timeout: 5000 }, done))
    const t = md.topics.find((x) => x.name === topic)
    if (t && t.partitions.length > 0) return t.partitions.length
    if (Date.now() > deadline) throw new Error(`topic ${topic} was not created by the mock`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/**
 * Every record of `topic`: each partition read from offset 0 up to its high
 * watermark at the time of the call, through librdkafka's consumer (CRC and
 * codec checks). Anything the consumer reports as an error fails the read.
 */
async function read(topic, timeoutMs) {
  const n = await partitionsOf(topic)
  const high = []
  for (let p = 0; p < n; p++) {
    const w = await cb((done) => host.queryWatermarkOffsets(topic, p, 5000, done))
    high.push(w.highOffset)
  }
  const next = high.map(() => 0)
  const records = []
  const wanted = high.reduce((a, b) => a + b, 0)
  if (wanted === 0) return records
  consumer.assign(high.map((_, partition) => ({ topic, partition, offset: 0 })))
  const deadline = Date.now() + timeoutMs
  try {
    while (next.some((o, p) => o < high[p])) {
      if (Date.now() > deadline) {
        throw new Error(
          `read ${topic}: offsets ${JSON.stringify(next)} of ${JSON.stringify(high)} after ${timeoutMs} ms`,
        )
      }
      const batch = await cb((done) => consumer.consume(500, done))
      for (const m of batch) {
        if (m.topic !== topic || m.offset >= high[m.partition]) continue
        next[m.partition] = m.offset + 1
        records.push({
          partition: m.partition,
          offset: m.offset,
          key: m.key == null ? null : Buffer.from(m.key).toString('base64'),
          value: m.value == null ? null : m.value.toString('base64'),
          headers: (m.headers ?? []).flatMap((h) =>
            Object.entries(h).map(([k, v]) => [k, v == null ? null : Buffer.from(v).toString('base64')]),
          ),
        })
      }
    }
  } finally {
    consumer.unassign()
  }
  return records
}

process.on('message', async (msg) => {
  if (msg.op === 'close') {
    consumer.disconnect(() => host.disconnect(() => process.exit(0)))
    setTimeout(() => process.exit(0), 5000).unref()
    return
  }
  try {
    if (msg.op === 'topic') process.send({ id: msg.id, partitions: await partitionsOf(msg.topic) })
    else if (msg.op === 'read') process.send({ id: msg.id, records: await read(msg.topic, msg.timeoutMs) })
    else throw new Error(`unknown op ${JSON.stringify(msg.op)}`)
  } catch (err) {
    process.send({ id: msg.id, error: String(err?.stack ?? err) })
  }
})
// The parent going away ends the cluster.
process.on('disconnect', () => process.exit(0))
process.send({ type: 'ready', bootstrap, librdkafka: Kafka.librdkafkaVersion })

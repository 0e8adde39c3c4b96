/**
 * Question: what does the queue cost a Kafka producer — items per second and
 * CPU per item — beside the same Kafka client fed straight from the main
 * thread?
 *
 * Both subjects produce to librdkafka's mock cluster (3 brokers, in a child
 * process, `@vinequeue/kafka-mock`), started once for the step. The mock is a
 * C broker in memory, no disk, no replication: the figures compare two
 * clients on one broker, not Kafka's throughput.
 *
 * - `e2e_kafka`: `q.enqueue` on the main thread (the e2e producer: CHUNK
 *   events per turn of the event loop) into a queue with the queue's default
 *   options — the e2e_memory settings: no WAL, 1000-item batches, on 2 cores
 *   one sender thread × 4 sends in flight — and `@vinequeue/senders/kafka`
 *   (default options: JSON values, no keys, acks -1, no compression, not
 *   idempotent). Timed until `q.drain()` resolves: every item acknowledged
 *   by the broker.
 * - `peer.kafka_direct`: no queue. The same @platformatic/kafka `Producer`,
 *   with the options the sender gives it by default, on the main thread; the
 *   same producer loop pushes each event into an array and every 1000 are
 *   sent as one `producer.send()`, each item `JSON.stringify`ed and UTF-8
 *   encoded as the sender does (the sender's JSON is of the item decoded from
 *   the queue's msgpack: the same text), one partition per send rotating
 *   like the sender's keyless batches, at most 4 sends in flight (the
 *   queue's own limit here). Timed until every send is acknowledged.
 *
 * `cpu_us_per_item`: `process.cpuUsage()` (user + system, every thread of
 * this process: the queue's pipeline and sender threads included; the mock
 * broker's process is not) over each timed round, per item.
 *
 * Each subject has a topic of its own for the step (the sender's topic is
 * fixed for a queue's life; a new queue per round would time cold sender
 * threads). After every round, warm-up included, the sum of the topic's high
 * watermarks must have grown by exactly the round's items (a lost or a
 * duplicated record fails the step), and the queue must have acknowledged
 * all of them with none dead-lettered.
 */
import { type MessageToProduce, Producer } from '@platformatic/kafka'
import { createQueue, type Queue } from '@vinequeue/core'
import { type MockCluster, startMockCluster } from '@vinequeue/kafka-mock'
import { InFlight } from './direct-undici.ts'
import { enqueueAll, feedArrays } from './e2e-memory.ts'
import type { BenchEvent } from './event.ts'
import { type Figure, progress } from './report.ts'
import { interleave, median, ROUNDS } from './stats.ts'

/** Items per round. */
export const KAFKA_ITEMS = 300_000
/** Untimed items through each subject first (thread start-up, connections, JIT). */
const WARM_UP_ITEMS: number = 2 * KAFKA_ITEMS
/** Items per `send` of the direct peer (the queue's default maxBatchSize). */
const BATCH = 1000
/** Sends in flight of the direct peer: the queue's maxInFlightBatches on 2 cores. */
const IN_FLIGHT = 4
const BROKERS = 3

/** The Kafka sender module, resolved from this package: exact, whatever the working directory. */
const KAFKA_SENDER: string = import.meta.resolve('@vinequeue/senders/kafka')

type KafkaMessage = MessageToProduce<Buffer, Buffer, Buffer, Buffer>

/** What one timed round measured. */
interface KafkaRound {
  readonly itemsPerS: number
  /** CPU of this process (all threads, user + system) per item, µs. */
  readonly cpuUsPerItem: number
}

/** One subject's topic and the records it has been checked to hold so far. */
class Topic {
  #expected = 0
  constructor(
    readonly cluster: MockCluster,
    readonly name: string,
  ) {}

  async records(): Promise<number> {
    return (await this.cluster.highWatermarks(this.name)).reduce((a, b) => a + b, 0)
  }

  /** After a round of `n` items: exactly `n` more records, or the step fails. */
  async expectAdded(n: number, what: string): Promise<void> {
    this.#expected += n
    const held = await this.records()
    if (held !== this.#expected) {
      throw new Error(
        `${what}: topic ${this.name} holds ${held} records, expected ${this.#expected} ` +
          `(${held < this.#expected ? 'records lost' : 'records written twice'})`,
      )
    }
  }
}

function cpuMicros(): number {
  const { user, system } = process.cpuUsage()
  return user + system
}

/** A started queue producing every item to `topic` through the Kafka sender, queue defaults otherwise. */
async function startKafkaQueue(brokers: readonly string[], topic: string): Promise<Queue> {
  const q = createQueue({ sender: { module: KAFKA_SENDER, options: { brokers: [...brokers], topic } } })
  await q.start()
  return q
}

async function queueRound(
  q: Queue,
  topic: Topic,
  pool: readonly BenchEvent[],
  n: number,
): Promise<KafkaRound> {
  const before = q.metrics()
  const cpu0 = cpuMicros()
  const t0 = performance.now()
  const waited = await enqueueAll(q, pool, n)
  await q.drain()
  const seconds = (performance.now() - t0) / 1000
  const cpu = cpuMicros() - cpu0
  const after = q.metrics()
  const sent = after.sentTotal - before.sentTotal
  const dead = after.deadLetteredTotal - before.deadLetteredTotal
  if (sent !== n || dead !== 0) {
    throw new Error(
      `e2e_kafka round: ${sent} items acknowledged and ${dead} dead-lettered, expected ${n} and 0`,
    )
  }
  await topic.expectAdded(n, 'e2e_kafka round')
  if (waited > 0)
    progress(`  e2e_kafka round: the lane was full ${waited} times (those items waited for room)`)
  return { itemsPerS: n / seconds, cpuUsPerItem: cpu / n }
}

/**
 * The sender's producer options with its defaults (kafka-sender.ts
 * `producerOptions` over options.ts `kDefaults`: not idempotent, so no
 * producer id options; no TLS, no SASL).
 */
function directProducer(brokers: readonly string[]): Producer<Buffer, Buffer, Buffer, Buffer> {
  return new Producer({
    clientId: 'vinequeue',
    bootstrapBrokers: [...brokers],
    idempotent: false,
    compression: 'none',
    acks: -1,
    connectTimeout: 5000,
    requestTimeout: 30_000,
    timeout: 5000,
    retries: 0,
    retryDelay: 250,
    metadataMaxAge: 5000,
    autocreateTopics: false,
    repeatOnStaleMetadata: false,
  })
}

/** The direct peer: what the sender does per batch, on this thread. */
class DirectKafka {
  #sticky = 0
  constructor(
    readonly producer: Producer<Buffer, Buffer, Buffer, Buffer>,
    readonly topic: string,
  ) {}

  async send(events: readonly BenchEvent[]): Promise<void> {
    const { topic } = this
    // The partition count as the sender reads it before every send (the client caches the metadata).
    const metadata = await this.producer.metadata({ topics: [topic] })
    const partition = this.#sticky++ % metadata.topics.get(topic)!.partitionsCount
    const messages: KafkaMessage[] = new Array(events.length)
    for (let i = 0; i < events.length; i++) {
      messages[i] = { topic, partition, value: Buffer.from(JSON.stringify(events[i]), 'utf8') }
    }
    await this.producer.send({ messages, acks: -1, compression: 'none' })
  }
}

async function directRound(
  direct: DirectKafka,
  topic: Topic,
  pool: readonly BenchEvent[],
  n: number,
): Promise<KafkaRound> {
  const flight = new InFlight(IN_FLIGHT)
  const cpu0 = cpuMicros()
  const t0 = performance.now()
  await feedArrays(pool, n, BATCH, (batch) => flight.add(direct.send(batch)))
  await flight.settled()
  const seconds = (performance.now() - t0) / 1000
  const cpu = cpuMicros() - cpu0
  await topic.expectAdded(n, 'peer.kafka_direct round')
  return { itemsPerS: n / seconds, cpuUsPerItem: cpu / n }
}

function describe(r: KafkaRound | undefined): string {
  return r ? `${(r.itemsPerS / 1e3).toFixed(0)} k items/s, ${r.cpuUsPerItem.toFixed(2)} µs CPU/item` : '-'
}

export async function runE2eKafka(pool: readonly BenchEvent[]): Promise<Figure[]> {
  const cluster = await startMockCluster(BROKERS)
  let q: Queue | undefined
  let producer: Producer<Buffer, Buffer, Buffer, Buffer> | undefined
  const viaQueue: KafkaRound[] = []
  const direct: KafkaRound[] = []
  try {
    const queueTopic = new Topic(cluster, (await cluster.topic()).name)
    const { name, partitions } = await cluster.topic()
    const directTopic = new Topic(cluster, name)
    q = await startKafkaQueue(cluster.brokers, queueTopic.name)
    producer = directProducer(cluster.brokers)
    const peer = new DirectKafka(producer, directTopic.name)
    progress(
      `  librdkafka ${cluster.librdkafka} mock cluster, ${BROKERS} brokers (a process of its own), ${partitions} partitions per topic; ` +
        `queue: ${q.options.senderThreads} sender thread(s) × ${q.options.senderConcurrency}, ${q.options.maxInFlightBatches} batches in flight; ` +
        `direct: ${IN_FLIGHT} sends of ${BATCH} in flight`,
    )
    // Warm-up of both subjects, not recorded (checked all the same).
    await queueRound(q, queueTopic, pool, WARM_UP_ITEMS)
    await directRound(peer, directTopic, pool, WARM_UP_ITEMS)
    const queue = q
    await interleave(
      ROUNDS,
      [
        async () => void viaQueue.push(await queueRound(queue, queueTopic, pool, KAFKA_ITEMS)),
        async () => void direct.push(await directRound(peer, directTopic, pool, KAFKA_ITEMS)),
      ],
      (r) =>
        progress(
          `e2e_kafka round ${r}/${ROUNDS}: queue→Kafka ${describe(viaQueue.at(-1))}; direct ${describe(direct.at(-1))}`,
        ),
    )
    const m = queue.metrics()
    progress(
      `  e2e_kafka queue: ${m.batchesSentTotal} batches, send p50 ${m.sendLatencyP50} ms, p99 ${m.sendLatencyP99} ms, retries ${m.retriesTotal}`,
    )
  } finally {
    await q?.stop()
    await producer?.close()
    await cluster.close()
  }
  const directRate = { name: 'peer.kafka_direct.items_per_s', value: median(direct.map((r) => r.itemsPerS)) }
  const directCpu = {
    name: 'peer.kafka_direct.cpu_us_per_item',
    value: median(direct.map((r) => r.cpuUsPerItem)),
  }
  return [
    {
      name: 'e2e_kafka.items_per_s',
      value: median(viaQueue.map((r) => r.itemsPerS)),
      unit: 'items/s',
      baseline: directRate,
    },
    { ...directRate, unit: 'items/s' },
    {
      name: 'e2e_kafka.cpu_us_per_item',
      value: median(viaQueue.map((r) => r.cpuUsPerItem)),
      unit: 'µs',
      baseline: directCpu,
    },
    { ...directCpu, unit: 'µs' },
  ]
}

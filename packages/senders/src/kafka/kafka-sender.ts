import { defaultPartitioner, Producer, type ProducerOptions } from '@platformatic/kafka'
import {
  type Batch,
  defineSender,
  type ItemFailure,
  type SendContext,
  SendError,
  type SenderFactory,
  type SendResult,
} from '@vinequeue/core/sender'
import { PendingResend } from './idempotent-resend.ts'
import { buildMessages, encodeHeaders, type KafkaMessage } from './messages.ts'
import { type KafkaSenderOptions, type ResolvedKafkaSenderOptions, resolveOptions } from './options.ts'
import { classify, itemFailures } from './outcome.ts'

/**
 * The Kafka sender: one @platformatic/kafka Producer per sender thread,
 * created here and closed in close(). Every batch becomes one
 * `producer.send()` of one message per item, to one topic; the client makes
 * one Produce request per partition leader, one record batch per partition.
 */
const createKafkaSender: SenderFactory<KafkaSenderOptions> = defineSender((input: KafkaSenderOptions) => {
  const options = resolveOptions(input)
  const producer = new Producer(producerOptions(options))
  const headers = Object.keys(options.headers).length > 0 ? encodeHeaders(options.headers) : undefined
  let sticky = 0
  // Idempotent producers: one send at a time (`lock`); after a failure,
  // either the same records again under the same producer state (`pending`)
  // or a fresh producer id (see `attempt`).
  let lock: Promise<unknown> = Promise.resolve()
  let renewProducerId = false
  let pending: PendingResend | undefined

  /** Everything one send asks of the client, not cut short by aborts. */
  async function attempt(messages: KafkaMessage[]): Promise<void> {
    const count = await partitionCount()
    const resend = pending?.match(messages)
    pending = undefined
    if (resend) {
      // The queue's retry of a send the client gave up on: same partitions,
      // same producer id, epoch and sequence numbers, so the broker
      // acknowledges what it already wrote without writing it again.
      for (let i = 0; i < messages.length; i++) messages[i]!.partition = resend.partitions[i]!
    } else {
      // Partitions are chosen here rather than by the client so that a failed
      // partition can be mapped back to its items. Keyed messages: the
      // client's default partitioner (murmur2 of the key bytes, `>>> 0`, modulo
      // the partition count). Keyless messages of one batch share one
      // partition, rotating per batch (like Java's sticky partitioner), rather
      // than spreading one batch over every partition.
      const keyless = sticky++ % count
      for (const m of messages) m.partition = m.key ? defaultPartitioner(m, m.key) % count : keyless
    }
    try {
      if (options.idempotent && resend) {
        producer.restoreIdempotentState(resend.state)
        renewProducerId = false
      } else if (options.idempotent && renewProducerId) {
        await producer.initIdempotentProducer({})
        renewProducerId = false
      }
      await producer.send({ messages, acks: options.acks, compression: options.compression })
    } catch (err) {
      if (options.idempotent) {
        // The client drops its producer state after a failed send. Unless the
        // next send is the retry of these records (`pending`), a new producer
        // id starts again from sequence 0: reusing the old id with numbers
        // the broker has not seen in order would be refused, or acknowledged
        // as duplicates without being written.
        renewProducerId = true
        if (classify(err).retryable) pending = PendingResend.from(err, options.topic, messages)
      }
      throw err
    }
  }

  async function partitionCount(): Promise<number> {
    try {
      const metadata = await producer.metadata({ topics: [options.topic] })
      return metadata.topics.get(options.topic)!.partitionsCount
    } catch (err) {
      if (/^Unknown topic/.test((err as Error)?.message)) {
        // Kafka's UNKNOWN_TOPIC_OR_PARTITION is retriable (the topic may be
        // being created); the client reports it as a non-retriable UserError.
        // Retrying keeps the items (in the WAL, if any) instead of dead-lettering them.
        throw new SendError(`Kafka topic ${options.topic} does not exist (UNKNOWN_TOPIC_OR_PARTITION)`, {
          retryable: true,
          status: 3,
          cause: err,
        })
      }
      throw err
    }
  }

  async function send(batch: Batch, ctx: SendContext): Promise<SendResult> {
    const { messages, itemOf, failed } = buildMessages(batch, options, headers)
    if (messages.length === 0) return failed.length > 0 ? { failed } : undefined
    let running: Promise<void>
    if (options.idempotent) {
      // Held until the client settles, even when this send was aborted:
      // two sends of one idempotent producer must not interleave.
      running = lock.then(() => (ctx.signal.aborted ? Promise.reject(ctx.signal.reason) : attempt(messages)))
      lock = running.catch(() => {})
    } else {
      running = attempt(messages)
    }
    try {
      await untilAborted(running, ctx.signal)
    } catch (err) {
      if (err instanceof SendError) throw err
      if (anyStaleMetadata(err)) producer.clearMetadata()
      const general = classify(err)
      const perItem = itemFailures(err, options.topic, messages, itemOf, general)
      if (perItem === undefined) {
        throw new SendError(`Kafka produce to ${options.topic} failed: ${general.reason}`, {
          retryable: general.retryable,
          status: general.status,
          cause: err,
        })
      }
      const first = perItem[0]
      if (failed.length === 0 && first && perItem.length === messages.length && allSame(perItem)) {
        // Every message failed the same way: one batch-level error says it better.
        throw new SendError(`Kafka produce to ${options.topic} failed: ${first.reason}`, {
          retryable: first.retryable !== false,
          status: first.status,
          cause: err,
        })
      }
      failed.push(...perItem)
    }
    return failed.length > 0 ? { failed } : undefined
  }

  return {
    send,
    async close() {
      // Idempotent: the client's close() is a no-op after the first call.
      await producer.close()
    },
  }
})
export default createKafkaSender

function producerOptions(o: ResolvedKafkaSenderOptions): ProducerOptions<Buffer, Buffer, Buffer, Buffer> {
  return {
    clientId: o.clientId,
    bootstrapBrokers: [...o.brokers],
    idempotent: o.idempotent,
    compression: o.compression,
    acks: o.acks,
    connectTimeout: o.connectTimeoutMs,
    requestTimeout: o.requestTimeoutMs,
    timeout: o.ackTimeoutMs,
    retries: o.retries,
    retryDelay: o.retryDelayMs,
    metadataMaxAge: o.metadataMaxAgeMs,
    autocreateTopics: false,
    // InitProducerId's producer id and epoch when the client asks for a new
    // producer: the protocol's "none" is -1/-1, but the client defaults to
    // 0/0 (@platformatic/kafka 2.12.1, every InitProducerId it sends, the
    // recovery after UNKNOWN_PRODUCER_ID included). Kafka ignores them
    // without a transactional id; a stricter broker (librdkafka's mock)
    // takes 0/0 for an epoch bump of producer 0 and answers
    // UNKNOWN_PRODUCER_ID, so no idempotent send ever succeeds. The client
    // falls back to these options wherever it does not pass its own; the
    // Produce requests of a non-idempotent producer do not read them.
    // See UPSTREAM.md.
    ...(o.idempotent ? { producerId: -1n, producerEpoch: -1 } : {}),
    // On NOT_LEADER_OR_FOLLOWER & co the client would re-send the whole
    // request, partitions that succeeded included: duplicates. We refresh
    // the metadata ourselves and retry only the failed items. (The
    // idempotent producer's re-sends are deduplicated by the broker.)
    repeatOnStaleMetadata: o.idempotent,
    ...(o.tls === undefined ? {} : { tls: o.tls === true ? {} : toBuffers(o.tls) }),
    ...(o.sasl === undefined ? {} : { sasl: { ...o.sasl } }),
  }
}

/** Structured clone turns Buffers into Uint8Arrays; node:tls wants Buffers for keys and certificates. */
function toBuffers(tls: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const fix = (v: unknown): unknown =>
    v instanceof Uint8Array
      ? Buffer.from(v.buffer, v.byteOffset, v.byteLength)
      : Array.isArray(v)
        ? v.map(fix)
        : v
  return Object.fromEntries(Object.entries(tls).map(([k, v]) => [k, fix(v)]))
}

function anyStaleMetadata(err: unknown): boolean {
  return typeof (err as any)?.findBy === 'function' && (err as any).findBy('hasStaleMetadata', true) !== null
}

function allSame(failed: readonly ItemFailure[]): boolean {
  const f = failed[0]!
  return failed.every((x) => x.retryable === f.retryable && x.status === f.status && x.reason === f.reason)
}

/**
 * Settles with `sending`, or rejects (retryably) as soon as `signal` aborts:
 * the queue aborts a send at `sendTimeoutMs` and terminates a thread whose
 * send does not settle soon after. The client has no cancellation, so the
 * request may still complete; the queue retries the batch either way
 * (at-least-once).
 */
function untilAborted<T>(sending: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) sending.catch(() => {})
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      sending.catch(() => {})
      reject(
        new SendError('Kafka send aborted at sendTimeoutMs; the request may still complete', {
          retryable: true,
          cause: signal.reason,
        }),
      )
    }
    if (signal.aborted) return onAbort()
    signal.addEventListener('abort', onAbort, { once: true })
    sending.then(
      (v) => {
        signal.removeEventListener('abort', onAbort)
        resolve(v)
      },
      (e) => {
        signal.removeEventListener('abort', onAbort)
        reject(e)
      },
    )
  })
}

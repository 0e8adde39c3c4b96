import { once } from 'node:events'
import { createServer, type Server, type Socket } from 'node:net'
import { CorruptBatchError, type DecodedBatch, decodeRecordBatches } from './record-batch.ts'
import { WireReader, WireWriter } from './wire.ts'

/**
 * A one-node Kafka broker stand-in for tests, in the spirit of Sarama's
 * MockBroker: a real TCP server on 127.0.0.1 that speaks the subset of the
 * protocol @platformatic/kafka's producer uses, records every record it is
 * sent, and can be told to fail Produce requests.
 *
 * Implemented (request and response formats of exactly these versions; the
 * client picks the highest version both sides support, so advertising these
 * maxima pins them):
 *
 *   key  API              advertised  implemented
 *   18   ApiVersions      0–3         3   (the client always sends v3 first)
 *                                     1   (with SASL, again before SaslHandshake,
 *                                          to pick the SaslAuthenticate version)
 *   3    Metadata         0–12        12
 *   0    Produce          3–9         9   (record batches v2; CRC-32C checked;
 *                                          none/gzip/snappy/lz4/zstd)
 *   22   InitProducerId   0–4         4   (idempotent producers; sequence numbers checked)
 *   17   SaslHandshake    0–1         1   (only when `sasl` is set: PLAIN)
 *   36   SaslAuthenticate 0–2         2
 *
 * Anything else is logged in `problems` and the connection is closed, so a
 * test that asserts `problems` is empty also proves the client used nothing
 * more. Not a real broker: one node, no replication, no fetch, no
 * transactions, no quotas, no compaction, acks only decide whether a
 * response is written.
 */

export const ApiKeys = {
  PRODUCE: 0,
  METADATA: 3,
  SASL_HANDSHAKE: 17,
  API_VERSIONS: 18,
  INIT_PRODUCER_ID: 22,
  SASL_AUTHENTICATE: 36,
} as const

const API_NAMES: Readonly<Record<number, string>> = {
  0: 'Produce',
  3: 'Metadata',
  17: 'SaslHandshake',
  18: 'ApiVersions',
  22: 'InitProducerId',
  36: 'SaslAuthenticate',
}

/** [apiKey, min, max] advertised in ApiVersions. */
const ADVERTISED: ReadonlyArray<readonly [number, number, number]> = [
  [ApiKeys.PRODUCE, 3, 9],
  [ApiKeys.METADATA, 0, 12],
  [ApiKeys.API_VERSIONS, 0, 3],
  [ApiKeys.INIT_PRODUCER_ID, 0, 4],
]
const ADVERTISED_SASL: ReadonlyArray<readonly [number, number, number]> = [
  [ApiKeys.SASL_HANDSHAKE, 0, 1],
  [ApiKeys.SASL_AUTHENTICATE, 0, 2],
]

/** Kafka error codes the stand-in answers with (https://kafka.apache.org/protocol#protocol_error_codes). */
export const KafkaErrorCodes = {
  NONE: 0,
  CORRUPT_MESSAGE: 2,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  NOT_LEADER_OR_FOLLOWER: 6,
  MESSAGE_TOO_LARGE: 10,
  NOT_ENOUGH_REPLICAS: 19,
  TOPIC_AUTHORIZATION_FAILED: 29,
  UNSUPPORTED_SASL_MECHANISM: 33,
  OUT_OF_ORDER_SEQUENCE_NUMBER: 45,
  SASL_AUTHENTICATION_FAILED: 58,
  INVALID_RECORD: 87,
} as const

/** One record as the broker stored it. */
export interface BrokerRecord {
  readonly topic: string
  readonly partition: number
  readonly offset: number
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly headers: ReadonlyArray<readonly [string, Buffer | null]>
  readonly timestamp: bigint
  /** Codec of the record batch it came in. */
  readonly compression: string
  /** -1 unless the producer is idempotent. */
  readonly producerId: bigint
}

export interface RequestLogEntry {
  readonly apiKey: number
  readonly apiVersion: number
  readonly name: string
  readonly clientId: string | null
  /** Which accepted connection (1, 2, …) it came on. */
  readonly connection: number
}

export interface ProduceFailure {
  /** Kafka error code for the failed partitions. */
  readonly errorCode: number
  /** Only these partitions fail; the others are stored as usual. Default: all. */
  readonly partitions?: readonly number[]
  /** error_message in the response. */
  readonly message?: string
}

export interface KafkaBrokerOptions {
  /** Topics that exist from the start: name → partition count. */
  readonly topics?: Readonly<Record<string, number>>
  /** Node id in Metadata. Default 1. */
  readonly nodeId?: number
  /** Require SASL/PLAIN with these credentials before anything but ApiVersions. */
  readonly sasl?: { readonly username: string; readonly password: string }
}

interface PartitionLog {
  records: number
  /** Idempotence state per producer id: last sequence and the last 5 batches' ranges. */
  producers: Map<
    bigint,
    { lastSequence: number; recent: Array<{ first: number; last: number; offset: number }> }
  >
}

interface ConnectionState {
  readonly id: number
  readonly socket: Socket
  authenticated: boolean
  buffered: Buffer
}

/** Request header v2 (with tagged fields) for these API versions, v1 otherwise. */
function flexibleRequest(apiKey: number, version: number): boolean {
  switch (apiKey) {
    case ApiKeys.PRODUCE:
      return version >= 9
    case ApiKeys.METADATA:
      return version >= 9
    case ApiKeys.API_VERSIONS:
      return version >= 3
    case ApiKeys.INIT_PRODUCER_ID:
      return version >= 2
    case ApiKeys.SASL_AUTHENTICATE:
      return version >= 2
    default:
      return false
  }
}

export class KafkaBroker {
  /** Every record stored, in arrival order. */
  readonly records: BrokerRecord[] = []
  /** Every request received, in arrival order. */
  readonly requests: RequestLogEntry[] = []
  /** Protocol problems: corrupt batches, unknown APIs or versions, bad framing. A passing test leaves it empty. */
  readonly problems: string[] = []

  readonly #server: Server
  readonly #nodeId: number
  readonly #sasl: KafkaBrokerOptions['sasl']
  readonly #topics = new Map<string, PartitionLog[]>()
  readonly #connections = new Set<ConnectionState>()
  #connectionCount = 0
  #nextProducerId = 1000n
  readonly #failures: ProduceFailure[] = []
  #rejectRecords: { predicate: (record: BrokerRecord) => boolean; errorCode: number } | undefined
  #dropResponses = 0
  #stalls = 0
  #port = 0

  private constructor(options: KafkaBrokerOptions) {
    this.#nodeId = options.nodeId ?? 1
    this.#sasl = options.sasl
    for (const [name, partitions] of Object.entries(options.topics ?? {})) this.createTopic(name, partitions)
    this.#server = createServer((socket) => this.#accept(socket))
  }

  /** Starts a broker on 127.0.0.1 and a free port. */
  static async start(options: KafkaBrokerOptions = {}): Promise<KafkaBroker> {
    const broker = new KafkaBroker(options)
    broker.#server.listen(0, '127.0.0.1')
    await once(broker.#server, 'listening')
    broker.#port = (broker.#server.address() as { port: number }).port
    return broker
  }

  /** `127.0.0.1:port`, for `brokers`. */
  get address(): string {
    return `127.0.0.1:${this.#port}`
  }

  /** Connections currently open. */
  get openConnections(): number {
    return this.#connections.size
  }

  /** Connections accepted so far. */
  get acceptedConnections(): number {
    return this.#connectionCount
  }

  createTopic(name: string, partitions: number): void {
    this.#topics.set(
      name,
      Array.from({ length: partitions }, () => ({ records: 0, producers: new Map() })),
    )
  }

  /** Records stored for `topic` (all topics when omitted). */
  recordsOf(topic?: string): BrokerRecord[] {
    return topic === undefined ? [...this.records] : this.records.filter((r) => r.topic === topic)
  }

  /** Requests received with this API key. */
  requestsOf(apiKey: number): RequestLogEntry[] {
    return this.requests.filter((r) => r.apiKey === apiKey)
  }

  /** Answers each of the next `count` Produce requests with `failure` (nothing of the failed partitions is stored). */
  failNextProduce(count: number, failure: ProduceFailure): void {
    for (let i = 0; i < count; i++) this.#failures.push(failure)
  }

  /**
   * Until called again with `undefined`: a partition batch that holds a
   * record matching `predicate` is rejected whole with `errorCode` (default
   * INVALID_RECORD), naming the matching records in `record_errors`
   * (batch_index), as Kafka does for records that fail validation.
   */
  rejectRecords(
    predicate: ((record: BrokerRecord) => boolean) | undefined,
    errorCode: number = KafkaErrorCodes.INVALID_RECORD,
  ): void {
    this.#rejectRecords = predicate && { predicate, errorCode }
  }

  /** Stores the next `count` Produce requests, then closes their connection without answering (a lost response). */
  dropNextProduceResponses(count: number): void {
    this.#dropResponses += count
  }

  /** Never answers the next `count` Produce requests and stores nothing of them (a hung broker). */
  stallNextProduce(count: number): void {
    this.#stalls += count
  }

  async close(): Promise<void> {
    for (const c of this.#connections) c.socket.destroy()
    this.#server.close()
    await once(this.#server, 'close')
  }

  #accept(socket: Socket): void {
    const state: ConnectionState = {
      id: ++this.#connectionCount,
      socket,
      authenticated: this.#sasl === undefined,
      buffered: Buffer.alloc(0),
    }
    this.#connections.add(state)
    socket.on('data', (chunk: Buffer) => {
      state.buffered = state.buffered.length === 0 ? chunk : Buffer.concat([state.buffered, chunk])
      // Size-prefixed frames: int32 length, then the request.
      while (state.buffered.length >= 4) {
        const size = state.buffered.readInt32BE(0)
        if (state.buffered.length < 4 + size) break
        const frame = state.buffered.subarray(4, 4 + size)
        state.buffered = state.buffered.subarray(4 + size)
        try {
          this.#handle(state, frame)
        } catch (err) {
          this.problems.push(`connection ${state.id}: ${(err as Error).message}`)
          socket.destroy()
          return
        }
      }
    })
    socket.on('error', () => {}) // a client reset is not a broker problem
    socket.on('close', () => this.#connections.delete(state))
  }

  #handle(conn: ConnectionState, frame: Buffer): void {
    const r = new WireReader(frame)
    const apiKey = r.int16()
    const apiVersion = r.int16()
    const correlationId = r.int32()
    const clientId = r.string16()
    if (flexibleRequest(apiKey, apiVersion)) r.taggedFields()
    const name = API_NAMES[apiKey] ?? `api ${apiKey}`
    this.requests.push({ apiKey, apiVersion, name, clientId, connection: conn.id })

    const saslApi =
      apiKey === ApiKeys.API_VERSIONS ||
      apiKey === ApiKeys.SASL_HANDSHAKE ||
      apiKey === ApiKeys.SASL_AUTHENTICATE
    if (!conn.authenticated && !saslApi) throw new Error(`${name} before SASL authentication`)
    const expect = (version: number): void => {
      if (apiVersion !== version) throw new Error(`${name} v${apiVersion} not implemented (only v${version})`)
    }
    switch (apiKey) {
      case ApiKeys.API_VERSIONS:
        if (apiVersion === 1) return this.#reply(conn, correlationId, false, this.#apiVersionsV1())
        expect(3)
        return this.#reply(conn, correlationId, false, this.#apiVersions(r))
      case ApiKeys.METADATA:
        expect(12)
        return this.#reply(conn, correlationId, true, this.#metadata(r))
      case ApiKeys.INIT_PRODUCER_ID:
        expect(4)
        return this.#reply(conn, correlationId, true, this.#initProducerId(r))
      case ApiKeys.PRODUCE: {
        expect(9)
        if (this.#stalls > 0) {
          this.#stalls--
          return
        }
        const { acks, response } = this.#produce(r)
        if (this.#dropResponses > 0) {
          this.#dropResponses--
          conn.socket.destroy()
          return
        }
        if (acks !== 0) this.#reply(conn, correlationId, true, response)
        return
      }
      case ApiKeys.SASL_HANDSHAKE:
        expect(1)
        return this.#reply(conn, correlationId, false, this.#saslHandshake(r))
      case ApiKeys.SASL_AUTHENTICATE:
        expect(2)
        return this.#reply(conn, correlationId, true, this.#saslAuthenticate(conn, r))
      default:
        throw new Error(`unsupported ${name} v${apiVersion}`)
    }
  }

  /** Response header v0 (correlation id) or v1 (plus tagged fields), size-prefixed. */
  #reply(conn: ConnectionState, correlationId: number, flexibleHeader: boolean, body: WireWriter): void {
    const head = new WireWriter().int32(correlationId)
    if (flexibleHeader) head.taggedFields()
    const payload = Buffer.concat([head.toBuffer(), body.toBuffer()])
    const size = Buffer.allocUnsafe(4)
    size.writeInt32BE(payload.length)
    conn.socket.write(Buffer.concat([size, payload]))
  }

  #apiVersions(r: WireReader): WireWriter {
    r.compactString() // client_software_name
    r.compactString() // client_software_version
    r.taggedFields()
    const apis = this.#sasl ? [...ADVERTISED, ...ADVERTISED_SASL] : ADVERTISED
    return new WireWriter()
      .int16(0)
      .compactArray(apis, (w, [key, min, max]) => w.int16(key).int16(min).int16(max).taggedFields())
      .int32(0) // throttle_time_ms
      .taggedFields()
  }

  /** v1: an empty request; the answer in the pre-flexible layout (int32-counted array, no tags). */
  #apiVersionsV1(): WireWriter {
    const apis = this.#sasl ? [...ADVERTISED, ...ADVERTISED_SASL] : ADVERTISED
    return new WireWriter()
      .int16(0)
      .array32(apis, (w, [key, min, max]) => w.int16(key).int16(min).int16(max))
      .int32(0) // throttle_time_ms
  }

  #metadata(r: WireReader): WireWriter {
    const requested = r.compactArray((t) => {
      t.uuid()
      const name = t.compactString()
      t.taggedFields()
      return name
    })
    r.bool() // allow_auto_topic_creation: topics are never created on demand
    r.bool() // include_topic_authorized_operations
    r.taggedFields()
    const names = requested === null ? [...this.#topics.keys()] : requested.filter((n) => n !== null)
    const w = new WireWriter()
      .int32(0) // throttle_time_ms
      .compactArray([this.#nodeId], (w, id) =>
        w.int32(id).compactString('127.0.0.1').int32(this.#port).compactString(null).taggedFields(),
      )
      .compactString('vinequeue-standin') // cluster_id
      .int32(this.#nodeId) // controller_id
    w.compactArray(names, (w, name) => {
      const partitions = this.#topics.get(name)
      w.int16(partitions ? 0 : KafkaErrorCodes.UNKNOWN_TOPIC_OR_PARTITION)
        .compactString(name)
        .raw(Buffer.alloc(16)) // topic_id: the zero UUID
        .bool(false) // is_internal
        .compactArray(
          (partitions ?? []).map((_, i) => i),
          (w, index) => {
            w.int16(0)
              .int32(index)
              .int32(this.#nodeId) // leader
              .int32(0) // leader_epoch
              .compactArray([this.#nodeId], (w, n) => w.int32(n)) // replicas
              .compactArray([this.#nodeId], (w, n) => w.int32(n)) // isr
              .compactArray([], (w, n: number) => w.int32(n)) // offline
              .taggedFields()
          },
        )
        .int32(-2147483648) // topic_authorized_operations: not requested
        .taggedFields()
    })
    return w.taggedFields()
  }

  #initProducerId(r: WireReader): WireWriter {
    r.compactString() // transactional_id
    r.int32() // transaction_timeout_ms
    r.int64() // producer_id
    r.int16() // producer_epoch
    r.taggedFields()
    // As Kafka does for a null transactional id: always a fresh producer id.
    return new WireWriter()
      .int32(0)
      .int16(0)
      .int64(this.#nextProducerId++)
      .int16(0)
      .taggedFields()
  }

  #produce(r: WireReader): { acks: number; response: WireWriter } {
    r.compactString() // transactional_id
    const acks = r.int16()
    r.int32() // timeout_ms
    const topics =
      r.compactArray((t) => {
        const name = t.compactString() ?? ''
        const partitions =
          t.compactArray((p) => {
            const index = p.int32()
            const records = p.compactBytes()
            p.taggedFields()
            return { index, records }
          }) ?? []
        t.taggedFields()
        return { name, partitions }
      }) ?? []
    r.taggedFields()

    const failure = this.#failures.shift()
    const responses = topics.map(({ name, partitions }) => ({
      name,
      partitions: partitions.map(({ index, records }) => {
        if (failure && (failure.partitions === undefined || failure.partitions.includes(index))) {
          return { index, errorCode: failure.errorCode, offset: -1, message: failure.message ?? null }
        }
        return { index, ...this.#append(name, index, records) }
      }),
    }))

    const w = new WireWriter().compactArray(responses, (w, topic) => {
      w.compactString(topic.name)
        .compactArray(topic.partitions, (w, p) => {
          w.int32(p.index)
            .int16(p.errorCode)
            .int64(BigInt(p.offset))
            .int64(-1n) // log_append_time_ms: CreateTime topics
            .int64(0n) // log_start_offset
            .compactArray(p.recordErrors ?? [], (w, e: { index: number; message: string }) =>
              w.int32(e.index).compactString(e.message).taggedFields(),
            )
            .compactString(p.message)
            .taggedFields()
        })
        .taggedFields()
    })
    return { acks, response: w.int32(0).taggedFields() }
  }

  /** Validates and stores one partition's record batches; returns the partition response fields. */
  #append(
    topic: string,
    partition: number,
    records: Buffer | null,
  ): {
    errorCode: number
    offset: number
    message: string | null
    recordErrors?: Array<{ index: number; message: string }>
  } {
    const log = this.#topics.get(topic)?.[partition]
    if (!log) return { errorCode: KafkaErrorCodes.UNKNOWN_TOPIC_OR_PARTITION, offset: -1, message: null }
    let batches: DecodedBatch[]
    try {
      batches = decodeRecordBatches(records ?? Buffer.alloc(0))
    } catch (err) {
      if (!(err instanceof CorruptBatchError) && !(err instanceof RangeError)) throw err
      this.problems.push(`${topic}/${partition}: ${err.message}`)
      return { errorCode: KafkaErrorCodes.CORRUPT_MESSAGE, offset: -1, message: err.message }
    }
    const toRecords = (batch: DecodedBatch, base: number): BrokerRecord[] =>
      batch.records.map((rec, i) => ({
        topic,
        partition,
        offset: base + i,
        key: rec.key,
        value: rec.value,
        headers: rec.headers,
        timestamp: rec.timestamp,
        compression: batch.compression,
        producerId: batch.producerId,
      }))

    // Validation first: Kafka rejects the partition's whole request if any record is invalid.
    if (this.#rejectRecords) {
      const recordErrors: Array<{ index: number; message: string }> = []
      let i = 0
      for (const batch of batches) {
        for (const rec of toRecords(batch, -1)) {
          if (this.#rejectRecords.predicate(rec))
            recordErrors.push({ index: i, message: 'rejected by the test' })
          i++
        }
      }
      if (recordErrors.length > 0) {
        return {
          errorCode: this.#rejectRecords.errorCode,
          offset: -1,
          message: 'invalid records',
          recordErrors,
        }
      }
    }

    const firstOffset = log.records
    for (const batch of batches) {
      if (batch.producerId >= 0n) {
        // Idempotence (KIP-98): a batch that repeats one of the last five is
        // acknowledged again, not appended; a gap is an error.
        const state = log.producers.get(batch.producerId) ?? { lastSequence: -1, recent: [] }
        const last = batch.baseSequence + batch.records.length - 1
        const seen = state.recent.find((b) => b.first === batch.baseSequence && b.last === last)
        if (seen) return { errorCode: 0, offset: seen.offset, message: null }
        if (batch.baseSequence !== state.lastSequence + 1) {
          return {
            errorCode: KafkaErrorCodes.OUT_OF_ORDER_SEQUENCE_NUMBER,
            offset: -1,
            message: `expected sequence ${state.lastSequence + 1}, got ${batch.baseSequence}`,
          }
        }
        state.lastSequence = last
        state.recent.push({ first: batch.baseSequence, last, offset: log.records })
        if (state.recent.length > 5) state.recent.shift()
        log.producers.set(batch.producerId, state)
      }
      this.records.push(...toRecords(batch, log.records))
      log.records += batch.records.length
    }
    return { errorCode: 0, offset: firstOffset, message: null }
  }

  #saslHandshake(r: WireReader): WireWriter {
    const mechanism = r.string16()
    const error = mechanism === 'PLAIN' ? 0 : KafkaErrorCodes.UNSUPPORTED_SASL_MECHANISM
    return new WireWriter().int16(error).array32(['PLAIN'], (w, m) => w.string16(m))
  }

  #saslAuthenticate(conn: ConnectionState, r: WireReader): WireWriter {
    const bytes = r.compactBytes() ?? Buffer.alloc(0)
    r.taggedFields()
    // PLAIN (RFC 4616): authzid NUL authcid NUL password.
    const [, user, password] = bytes.toString('utf8').split('\0')
    const ok = user === this.#sasl?.username && password === this.#sasl?.password
    conn.authenticated = ok
    return new WireWriter()
      .int16(ok ? 0 : KafkaErrorCodes.SASL_AUTHENTICATION_FAILED)
      .compactString(ok ? null : 'Authentication failed: invalid username or password')
      .compactBytes(Buffer.alloc(0))
      .int64(0n) // session_lifetime_ms: no re-authentication
      .taggedFields()
  }
}

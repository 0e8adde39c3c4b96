import { ConfigCheck, describeValue, isPlainObject } from '@vinequeue/core/sender'

/**
 * Options of the Kafka sender. They cross a thread boundary (the queue
 * structured-clones them into every sender thread), so they are plain data:
 * no functions, no sockets; Buffers arrive as Uint8Array.
 */
export interface KafkaSenderOptions {
  /** Bootstrap brokers, `'host:port'` (port defaults to 9092). Required, at least one. */
  readonly brokers: readonly string[]
  /** Topic every item is produced to. Required. */
  readonly topic: string
  /** `client.id` sent with every request (broker logs, quotas). Default `'vinequeue'`. */
  readonly clientId?: string
  /**
   * Name of an item field whose value becomes the message key: a string or a
   * number (sent as its UTF-8 text) or bytes (Uint8Array, sent as they are).
   * Items with the same key land on the same partition, in order. Items
   * without the field (or with null) have no key. Default: no keys.
   */
  readonly key?: string
  /** Headers added to every message, name → value (string as UTF-8, or bytes). Default none. */
  readonly headers?: Readonly<Record<string, string | Uint8Array>>
  /**
   * Acknowledgements the partition leader waits for before answering:
   * `-1` every in-sync replica, `1` the leader only, `0` no answer at all
   * (fire and forget: broker errors are never seen). Default `-1`.
   */
  readonly acks?: -1 | 0 | 1
  /**
   * Record batch compression: `'gzip'` and `'zstd'` (node:zlib; zstd at its
   * default level 3), `'snappy'` and `'lz4'` (WebAssembly, no native
   * module). Default `'none'`.
   */
  readonly compression?: KafkaCompression
  /**
   * Idempotent producer (KIP-98): the broker drops the duplicates of the
   * client's own retries of a request. Forces `acks: -1` and one request in
   * flight per connection; this sender then sends one batch at a time per
   * thread. Default false.
   */
  readonly idempotent?: boolean
  /**
   * Message value: `'json'` (each item as JSON text) or `'msgpack'` (each
   * item's msgpack bytes exactly as the queue holds them, not re-encoded).
   * Items given to `enqueueRaw` are sent as their bytes either way. Default `'json'`.
   */
  readonly value?: 'json' | 'msgpack'
  /** Longest wait for a TCP (and TLS) connection to a broker. Default 5000 ms. */
  readonly connectTimeoutMs?: number
  /**
   * Longest wait for a broker's answer to one request; then the send fails
   * (retryably). Keep it below the queue's `sendTimeoutMs`. Default 30000 ms.
   */
  readonly requestTimeoutMs?: number
  /** How long the broker may wait for the `acks` replicas (Produce `timeout_ms`). Default 5000 ms. */
  readonly ackTimeoutMs?: number
  /**
   * Retries inside the Kafka client, `retryDelayMs` apart, before a send
   * fails and the queue's own backoff takes over. Default 0; 3 when
   * `idempotent` (which needs at least 2: the client turns 0 and 1 into
   * unlimited retries).
   */
  readonly retries?: number
  /** Delay between the client's own retries. Default 250 ms. */
  readonly retryDelayMs?: number
  /** Cluster metadata (partitions, leaders) is refreshed when older than this. Default 5000 ms. */
  readonly metadataMaxAgeMs?: number
  /**
   * TLS: `true`, or node:tls connect options (`ca`, `cert`, `key`,
   * `servername`, `rejectUnauthorized`, …) passed to the client as they are.
   * Default: plain TCP.
   */
  readonly tls?: true | Readonly<Record<string, unknown>>
  /** SASL authentication, passed to the client. Default none. */
  readonly sasl?: KafkaSaslOptions
}

export type KafkaCompression = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd'

/** SASL mechanisms that need no callback (options must be cloneable). */
export interface KafkaSaslOptions {
  readonly mechanism: 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512' | 'OAUTHBEARER'
  /** PLAIN and SCRAM. */
  readonly username?: string
  /** PLAIN and SCRAM. */
  readonly password?: string
  /** OAUTHBEARER: the bearer token. */
  readonly token?: string
}

export interface ResolvedKafkaSenderOptions {
  readonly brokers: readonly string[]
  readonly topic: string
  readonly clientId: string
  readonly key: string | undefined
  readonly headers: Readonly<Record<string, string | Uint8Array>>
  readonly acks: -1 | 0 | 1
  readonly compression: KafkaCompression
  readonly idempotent: boolean
  readonly value: 'json' | 'msgpack'
  readonly connectTimeoutMs: number
  readonly requestTimeoutMs: number
  readonly ackTimeoutMs: number
  readonly retries: number
  readonly retryDelayMs: number
  readonly metadataMaxAgeMs: number
  readonly tls: true | Readonly<Record<string, unknown>> | undefined
  readonly sasl: KafkaSaslOptions | undefined
}

const kDefaults: Readonly<Omit<ResolvedKafkaSenderOptions, 'brokers' | 'topic' | 'retries'>> = Object.freeze({
  clientId: 'vinequeue',
  key: undefined,
  headers: Object.freeze({}),
  acks: -1,
  compression: 'none',
  idempotent: false,
  value: 'json',
  connectTimeoutMs: 5000,
  requestTimeoutMs: 30_000,
  ackTimeoutMs: 5000,
  retryDelayMs: 250,
  metadataMaxAgeMs: 5000,
  tls: undefined,
  sasl: undefined,
})

const KNOWN_KEYS: ReadonlySet<string> = new Set([...Object.keys(kDefaults), 'brokers', 'topic', 'retries'])

/** Every codec the sender can write (all of them on every supported Node). */
export const supportedCompressions: readonly KafkaCompression[] = Object.freeze([
  'none',
  'gzip',
  'snappy',
  'lz4',
  'zstd',
])

const SASL_MECHANISMS: readonly string[] = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512', 'OAUTHBEARER']
// Kafka's own rule for topic names (kafka.common.internals.Topic).
const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/
const INT32_MAX = 2 ** 31 - 1

/**
 * Merges `options` over the defaults and validates them, reporting every bad
 * field at once. Runs in the sender thread when the queue starts, so a bad
 * option makes `queue.start()` reject instead of failing every send later.
 * Throws one InvalidConfigError (`VQ_INVALID_CONFIG`) with every problem in
 * `issues`.
 */
export function resolveOptions(options: KafkaSenderOptions | undefined): ResolvedKafkaSenderOptions {
  const check: ConfigCheck = new ConfigCheck('kafka sender options')
  if (!isPlainObject(options)) {
    check.refuse('options', `expected an object with brokers and topic (got ${describeValue(options)})`)
  }
  const o: Record<string, any> = { ...kDefaults }
  check.unknownKeys(options, KNOWN_KEYS)
  for (const [key, value] of Object.entries(options)) {
    if (KNOWN_KEYS.has(key) && value !== undefined) o[key] = value
  }

  if (!Array.isArray(o.brokers) || o.brokers.length === 0) {
    check.add('brokers', `must be a non-empty array of 'host:port' strings (got ${describeValue(o.brokers)})`)
  } else {
    for (const b of o.brokers as unknown[]) {
      const m = typeof b === 'string' ? /^[^\s:]+(?::(\d{1,5}))?$/.exec(b) : null
      if (!m || (m[1] !== undefined && (Number(m[1]) < 1 || Number(m[1]) > 65535))) {
        check.add('brokers', `${describeValue(b)} is not 'host' or 'host:port' (port 1 to 65535)`)
      }
    }
  }
  if (typeof o.topic !== 'string' || !TOPIC_NAME.test(o.topic)) {
    check.add('topic', `must be 1 to 249 characters of [a-zA-Z0-9._-] (got ${describeValue(o.topic)})`)
  }
  if (typeof o.clientId !== 'string' || !/^\S+$/.test(o.clientId)) {
    check.add('clientId', `must be a non-empty string without whitespace (got ${describeValue(o.clientId)})`)
  }
  if (o.key !== undefined && (typeof o.key !== 'string' || o.key === '')) {
    check.add('key', `must be the name of an item field, a non-empty string (got ${describeValue(o.key)})`)
  }
  if (!isPlainObject(o.headers)) {
    check.add(
      'headers',
      `must be an object of header name → string or bytes (got ${describeValue(o.headers)})`,
    )
  } else {
    for (const [name, value] of Object.entries(o.headers)) {
      if (typeof value !== 'string' && !(value instanceof Uint8Array)) {
        check.add(`headers.${name}`, `must be a string or bytes (got ${describeValue(value)})`)
      }
    }
  }
  if (o.acks !== -1 && o.acks !== 0 && o.acks !== 1) {
    check.add(
      'acks',
      `must be -1 (all in-sync replicas), 1 (leader) or 0 (none) (got ${describeValue(o.acks)})`,
    )
  }
  check.oneOf('compression', o.compression, supportedCompressions)
  check.boolean('idempotent', o.idempotent)
  if (o.value !== 'json' && o.value !== 'msgpack') {
    check.add('value', `must be 'json' or 'msgpack' (got ${describeValue(o.value)})`)
  }
  const int = (key: string, min: number, max = INT32_MAX): void => {
    check.integer(key, o[key], min, max)
  }
  o.retries ??= o.idempotent === true ? 3 : 0
  int('connectTimeoutMs', 1)
  int('requestTimeoutMs', 1)
  int('ackTimeoutMs', 0)
  int('retries', 0, 1000)
  int('retryDelayMs', 0)
  int('metadataMaxAgeMs', 0)
  if (o.idempotent === true) {
    if (o.acks !== -1)
      check.add('acks', `an idempotent producer needs acks -1 (got ${describeValue(o.acks)})`)
    if (Number.isInteger(o.retries) && o.retries < 2) {
      check.add(
        'retries',
        `an idempotent producer needs at least 2 (the client turns 0 and 1 into unlimited retries) (got ${o.retries})`,
      )
    }
  }
  if (o.tls !== undefined && o.tls !== true && !isPlainObject(o.tls)) {
    check.add('tls', `must be true or an object of node:tls connect options (got ${describeValue(o.tls)})`)
  }
  if (o.sasl !== undefined) {
    const s = o.sasl
    if (isPlainObject(s)) check.unknownKeys(s, ['mechanism', 'username', 'password', 'token'], 'sasl.')
    if (!isPlainObject(s) || !SASL_MECHANISMS.includes(s.mechanism as string)) {
      check.add(
        'sasl.mechanism',
        `must be one of ${SASL_MECHANISMS.join(', ')} (got ${describeValue(isPlainObject(s) ? s.mechanism : s)})`,
      )
    } else if (s.mechanism === 'OAUTHBEARER') {
      if (typeof s.token !== 'string' || s.token === '')
        check.add('sasl.token', 'OAUTHBEARER needs a token string')
    } else {
      for (const field of ['username', 'password'] as const) {
        if (typeof s[field] !== 'string') check.add(`sasl.${field}`, `${s.mechanism} needs a ${field} string`)
      }
    }
  }
  check.throwIfAny()
  return o as ResolvedKafkaSenderOptions
}

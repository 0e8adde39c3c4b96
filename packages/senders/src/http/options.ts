import { createPrivateKey, X509Certificate } from 'node:crypto'
import { ConfigCheck, describeValue, isPlainObject } from '@vinequeue/core/sender'

/**
 * Options of the HTTP sender. They cross a thread boundary (the queue clones
 * them into every sender thread), so they are plain data: strings, numbers,
 * booleans and byte arrays (a Buffer arrives as a Uint8Array).
 */
export interface HttpSenderOptions {
  /** Target URL (`http:` or `https:`); its path and query are the request's. Required. */
  readonly url: string
  /** Request method. Default `'POST'`. */
  readonly method?: HttpMethod
  /**
   * Extra request headers (e.g. `authorization`). `content-type` overrides the
   * format's default; `content-length`, `content-encoding`, `transfer-encoding`,
   * `connection`, `keep-alive`, `upgrade` and `expect` are the sender's own.
   * Default none.
   */
  readonly headers?: Readonly<Record<string, string>>
  /**
   * Body format. `'json'`: one JSON array of the items. `'ndjson'`: one JSON
   * document per item and line. `'msgpack'`: one msgpack array of the items'
   * encoded bytes as the queue stored them (no decoding). Default `'json'`.
   */
  readonly format?: HttpBodyFormat
  /** gzip the body (`content-encoding: gzip`). Default false. */
  readonly gzip?: boolean
  /** Longest wait for a TCP (and TLS) connection (ms); 0 disables. Default 10000. */
  readonly connectTimeoutMs?: number
  /** Longest wait for the response headers once the request is sent (ms); 0 disables. Default 30000. */
  readonly headersTimeoutMs?: number
  /** Longest gap between two chunks of the response body (ms); 0 disables. Default 30000. */
  readonly bodyTimeoutMs?: number
  /** Sockets per sender thread; sends beyond it wait in the pool. Default 16. */
  readonly connections?: number
  /** Requests in flight per socket (HTTP/1.1 pipelining); 0 closes the socket after each request. Default 1. */
  readonly pipelining?: number
  /** Idle time before a kept-alive socket is closed (ms; a server's `Keep-Alive` hint may lower it). Default 4000. */
  readonly keepAliveTimeoutMs?: number
  /** TLS settings for `https:` URLs. Default: the system's CAs, certificates verified. */
  readonly tls?: HttpSenderTlsOptions
  /**
   * Name of a request header that carries the batch's `batch.key` (e.g.
   * `'Idempotency-Key'`), so that the target can drop a batch it already
   * stored when the queue sends it again (after a crash and a restart with
   * a WAL: the same batch, the same key). A part of a batch split after a 413
   * carries `<batch.key>/<batch.count>/<first>-<last>` (its first and last
   * item indexes). Must not be a name in `headers`. Default: none (no header).
   */
  readonly idempotencyKey?: string
}

export type HttpMethod = 'POST' | 'PUT' | 'PATCH'
export type HttpBodyFormat = 'json' | 'ndjson' | 'msgpack'

/** PEM text or bytes. */
export type Pem = string | Uint8Array

/** TLS connect options (passed to `tls.connect` through undici). */
export interface HttpSenderTlsOptions {
  /** Trusted CA certificates (PEM), replacing the system's. Default: the system's CAs. */
  readonly ca?: Pem | readonly Pem[]
  /** Client certificate (PEM), for mutual TLS. Default none. */
  readonly cert?: Pem
  /** Client private key (PEM), for mutual TLS. Default none. */
  readonly key?: Pem
  /** Reject a server whose certificate does not verify. Default true. */
  readonly rejectUnauthorized?: boolean
  /** SNI server name. Default: the URL's host name. */
  readonly servername?: string
}

export interface ResolvedHttpSenderOptions {
  /** `protocol//host:port` */
  readonly origin: string
  /** Path and query of the URL. */
  readonly path: string
  readonly method: HttpMethod
  /** Lower-cased names; the format's `content-type` and `content-encoding` included. */
  readonly headers: Readonly<Record<string, string>>
  readonly format: HttpBodyFormat
  readonly gzip: boolean
  readonly connectTimeoutMs: number
  readonly headersTimeoutMs: number
  readonly bodyTimeoutMs: number
  readonly connections: number
  readonly pipelining: number
  readonly keepAliveTimeoutMs: number
  readonly tls: ResolvedTlsOptions | undefined
  /** Lower-cased header name, or undefined (off). */
  readonly idempotencyKey: string | undefined
}

export interface ResolvedTlsOptions {
  readonly ca?: Array<string | Buffer>
  readonly cert?: string | Buffer
  readonly key?: string | Buffer
  readonly rejectUnauthorized: boolean
  readonly servername?: string
}

const kDefaults = Object.freeze({
  url: undefined as string | undefined,
  method: 'POST' as HttpMethod,
  headers: Object.freeze({}) as Readonly<Record<string, string>>,
  format: 'json' as HttpBodyFormat,
  gzip: false,
  connectTimeoutMs: 10_000,
  headersTimeoutMs: 30_000,
  bodyTimeoutMs: 30_000,
  connections: 16,
  pipelining: 1,
  keepAliveTimeoutMs: 4_000,
  tls: undefined as HttpSenderTlsOptions | undefined,
  idempotencyKey: undefined as string | undefined,
})

const METHODS: readonly HttpMethod[] = ['POST', 'PUT', 'PATCH']
const FORMATS: readonly HttpBodyFormat[] = ['json', 'ndjson', 'msgpack']
const TLS_KEYS: ReadonlySet<string> = new Set(['ca', 'cert', 'key', 'rejectUnauthorized', 'servername'])

/** The sender sets these itself (or undici refuses them). */
const RESERVED_HEADERS: ReadonlySet<string> = new Set([
  'content-length',
  'content-encoding',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'expect',
])

export const CONTENT_TYPES: Readonly<Record<HttpBodyFormat, string>> = Object.freeze({
  json: 'application/json',
  ndjson: 'application/x-ndjson',
  msgpack: 'application/msgpack',
})

/** RFC 9110 token (header field name). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
/** Field values may not hold CR, LF or NUL (request smuggling); undici would throw on every send. */
const BAD_VALUE = /[\r\n\0]/

const MAX_MS = 24 * 3600 * 1000

/**
 * Merges `options` over the defaults and validates them, reporting every bad
 * field at once. Runs in the sender thread when the queue starts, so a bad
 * option makes `queue.start()` reject instead of failing every send later.
 * Throws one InvalidConfigError (`VQ_INVALID_CONFIG`) with every problem in
 * `issues`.
 */
export function resolveOptions(options: HttpSenderOptions): ResolvedHttpSenderOptions {
  const check: ConfigCheck = new ConfigCheck('HTTP sender options')
  if (!isPlainObject(options)) {
    check.refuse('options', `expected an object with a url (got ${describeValue(options)})`)
  }
  const o: Record<string, any> = { ...kDefaults }
  check.unknownKeys(options, Object.keys(kDefaults))
  for (const [key, value] of Object.entries(options)) {
    if (Object.hasOwn(kDefaults, key) && value !== undefined) o[key] = value
  }

  // url
  let url: URL | undefined
  if (typeof o.url !== 'string' || o.url === '') {
    check.add('url', `required, an http: or https: URL string (got ${describeValue(o.url)})`)
  } else if (!URL.canParse(o.url)) {
    check.add('url', `not a valid URL (got ${describeValue(o.url)})`)
  } else {
    url = new URL(o.url)
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      check.add('url', `must be http: or https: (got ${describeValue(url.protocol)})`)
    }
    if (url.username !== '' || url.password !== '') {
      check.add('url', 'must not hold credentials; send them in headers.authorization')
    }
  }

  check.oneOf('method', o.method, METHODS)
  check.oneOf('format', o.format, FORMATS)
  check.boolean('gzip', o.gzip)

  const int = (key: string, min: number, max: number, unit: string): void => {
    const v = o[key]
    if (typeof v !== 'number' || !Number.isInteger(v)) {
      check.add(key, `must be an integer (${unit}) (got ${describeValue(v)})`)
    } else if (v < min || v > max) {
      check.add(key, `must be from ${min} to ${max} ${unit} (got ${v})`)
    }
  }
  int('connectTimeoutMs', 0, MAX_MS, 'ms')
  int('headersTimeoutMs', 0, MAX_MS, 'ms')
  int('bodyTimeoutMs', 0, MAX_MS, 'ms')
  int('connections', 1, 4096, 'sockets')
  int('pipelining', 0, 128, 'requests')
  int('keepAliveTimeoutMs', 1, MAX_MS, 'ms')

  // headers
  const headers: Record<string, string> = {}
  if (typeof o.headers !== 'object' || o.headers === null || Array.isArray(o.headers)) {
    check.add('headers', `must be an object of header name → string value (got ${describeValue(o.headers)})`)
  } else {
    for (const [name, value] of Object.entries(o.headers as Record<string, unknown>)) {
      const lower = name.toLowerCase()
      if (!TOKEN.test(name)) check.add('headers', `${describeValue(name)} is not a valid header name`)
      else if (RESERVED_HEADERS.has(lower)) check.add(`headers.${name}`, 'set by the sender, not allowed')
      else if (typeof value !== 'string') {
        check.add(`headers.${name}`, `must be a string (got ${describeValue(value)})`)
      } else if (BAD_VALUE.test(value)) {
        check.add(`headers.${name}`, 'must not contain CR, LF or NUL')
      } else if (Object.hasOwn(headers, lower)) {
        check.add(`headers.${name}`, 'given twice (header names are case-insensitive)')
      } else headers[lower] = value
    }
  }

  const idempotencyKey = resolveKeyHeader(o.idempotencyKey, headers, check)
  const tls = resolveTls(o.tls, url, check)
  check.throwIfAny()

  const format = o.format as HttpBodyFormat
  headers['content-type'] ??= CONTENT_TYPES[format]
  if (o.gzip) headers['content-encoding'] = 'gzip'
  return {
    origin: url!.origin,
    path: `${url!.pathname}${url!.search}`,
    method: o.method,
    headers: Object.freeze(headers),
    format,
    gzip: o.gzip,
    connectTimeoutMs: o.connectTimeoutMs,
    headersTimeoutMs: o.headersTimeoutMs,
    bodyTimeoutMs: o.bodyTimeoutMs,
    connections: o.connections,
    pipelining: o.pipelining,
    keepAliveTimeoutMs: o.keepAliveTimeoutMs,
    tls,
    idempotencyKey,
  }
}

/** `idempotencyKey`: a header name of its own (lower-cased), or undefined when not given. */
function resolveKeyHeader(
  value: unknown,
  headers: Readonly<Record<string, string>>,
  check: ConfigCheck,
): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || !TOKEN.test(value)) {
    check.add('idempotencyKey', `must be a header name, e.g. 'Idempotency-Key' (got ${describeValue(value)})`)
    return undefined
  }
  const lower = value.toLowerCase()
  if (RESERVED_HEADERS.has(lower) || lower === 'content-type') {
    check.add('idempotencyKey', `${describeValue(value)} is a header the sender sets`)
  } else if (Object.hasOwn(headers, lower)) {
    check.add('idempotencyKey', `${describeValue(value)} is also in headers: give it in one place`)
  }
  return lower
}

function resolveTls(
  value: unknown,
  url: URL | undefined,
  check: ConfigCheck,
): ResolvedTlsOptions | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    check.add('tls', `must be an object (got ${describeValue(value)})`)
    return undefined
  }
  if (url && url.protocol !== 'https:') check.add('tls', 'only applies to https: URLs')
  const t = value as Record<string, unknown>
  check.unknownKeys(t, TLS_KEYS, 'tls.')
  const pem = (key: string, v: unknown): string | Buffer | undefined => {
    if (typeof v === 'string') return v
    // A Buffer is cloned into the sender thread as a plain Uint8Array: back to a Buffer for tls.
    if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength)
    check.add(key, `must be PEM text or bytes (got ${describeValue(v)})`)
    return undefined
  }
  const out: {
    ca?: Array<string | Buffer>
    cert?: string | Buffer
    key?: string | Buffer
    rejectUnauthorized: boolean
    servername?: string
  } = { rejectUnauthorized: true }
  if (t.ca !== undefined) {
    const list = Array.isArray(t.ca) ? t.ca : [t.ca]
    out.ca = list.map((v, i) => pem(Array.isArray(t.ca) ? `tls.ca[${i}]` : 'tls.ca', v)!)
  }
  if (t.cert !== undefined) out.cert = pem('tls.cert', t.cert)!
  if (t.key !== undefined) out.key = pem('tls.key', t.key)!
  if ((t.cert === undefined) !== (t.key === undefined)) check.add('tls.cert/tls.key', 'give both or neither')
  // tls.connect would take text that is no certificate and fail every
  // handshake later: each must parse here, so that start() rejects.
  out.ca?.forEach((v, i) => {
    if (v !== undefined) checkCertificates(Array.isArray(t.ca) ? `tls.ca[${i}]` : 'tls.ca', v, check)
  })
  if (out.cert !== undefined) checkCertificates('tls.cert', out.cert, check)
  if (out.key !== undefined) {
    try {
      createPrivateKey(out.key)
    } catch (err) {
      check.add('tls.key', `not a PEM private key (${(err as Error).message})`)
    }
  }
  if (t.rejectUnauthorized !== undefined) {
    if (typeof t.rejectUnauthorized !== 'boolean') {
      check.add('tls.rejectUnauthorized', `must be a boolean (got ${describeValue(t.rejectUnauthorized)})`)
    } else out.rejectUnauthorized = t.rejectUnauthorized
  }
  if (t.servername !== undefined) {
    if (typeof t.servername !== 'string' || t.servername === '') {
      check.add('tls.servername', `must be a non-empty string (got ${describeValue(t.servername)})`)
    } else out.servername = t.servername
  }
  return out
}

/** Every PEM certificate in `pem` must parse, and there must be one. */
function checkCertificates(key: string, pem: string | Buffer, check: ConfigCheck): void {
  const blocks = String(pem).match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)
  if (!blocks) {
    check.add(key, 'not a PEM certificate (no -----BEGIN CERTIFICATE----- block)')
    return
  }
  for (const block of blocks) {
    try {
      new X509Certificate(block)
    } catch (err) {
      check.add(key, `a certificate does not parse (${(err as Error).message})`)
      return
    }
  }
}

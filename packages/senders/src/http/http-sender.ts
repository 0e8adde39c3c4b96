import { promisify } from 'node:util'
import { gzip as gzipCallback } from 'node:zlib'
import {
  type Batch,
  defineSender,
  type ItemFailure,
  SendError,
  type SenderFactory,
} from '@vinequeue/core/sender'
import { type Dispatcher, Pool } from 'undici'
import { buildBody, type EncodedItems, encodeItems } from './body.ts'
import { classifyError, classifyStatus, OK, type Outcome } from './classify.ts'
import { type HttpSenderOptions, resolveOptions } from './options.ts'

const gzip = promisify(gzipCallback)

/** Bytes of an error response kept for the failure's reason. */
const SNIPPET_BYTES = 512
/** An error response longer than this is not read to the end (its socket is dropped instead). */
const DRAIN_LIMIT_BYTES = 64 * 1024

type Failed = Extract<Outcome, { kind: 'retry' | 'permanent' }>

/**
 * The idempotency key of a part of `batch` sent after a 413: the halving is
 * the same every time, and a batch retried with fewer items (the ones that
 * failed) has a smaller count, so the same key always names the same items —
 * also when a restart re-reads the whole batch from the WAL.
 */
function partKey(batch: Batch, ids: readonly number[]): string {
  return `${batch.key}/${batch.count}/${ids[0]}-${ids.at(-1)}`
}

/**
 * The HTTP sender. The queue calls this factory once per sender thread; each
 * thread gets its own undici Pool (keep-alive sockets to one origin), closed
 * by `close()`. One `send` makes one request — more only after a 413, and
 * then one after the other — so the server never sees more concurrent
 * requests than the queue has sends in flight.
 */
const createHttpSender: SenderFactory<HttpSenderOptions> = defineSender((options: HttpSenderOptions) => {
  const o = resolveOptions(options)
  const pool = new Pool(o.origin, {
    connections: o.connections,
    pipelining: o.pipelining,
    keepAliveTimeout: o.keepAliveTimeoutMs,
    connectTimeout: o.connectTimeoutMs,
    headersTimeout: o.headersTimeoutMs,
    bodyTimeout: o.bodyTimeoutMs,
    // undici 8 negotiates HTTP/2 when a TLS server offers it (ALPN); the
    // options above (sockets, pipelining, 0 = a socket per request) are
    // HTTP/1.1's, so the sender stays on HTTP/1.1.
    allowH2: false,
    ...(o.tls ? { connect: { ...o.tls } } : {}),
  })
  let closed: Promise<void> | undefined

  /**
   * One request carrying the items at `indices`, under idempotency key `key`
   * (when `idempotencyKey` is set). Never throws: every outcome is classified.
   */
  async function post(
    encoded: EncodedItems,
    indices: readonly number[],
    key: string,
    signal: AbortSignal,
  ): Promise<Outcome> {
    let body = buildBody(o.format, encoded, indices)
    if (o.gzip) body = await gzip(body)
    const requestHeaders =
      o.idempotencyKey === undefined ? o.headers : { ...o.headers, [o.idempotencyKey]: key }
    let response: Dispatcher.ResponseData
    try {
      response = await pool.request({ path: o.path, method: o.method, headers: requestHeaders, body, signal })
    } catch (err) {
      return classifyError(err)
    }
    const { statusCode, headers, body: responseBody } = response
    if (statusCode >= 200 && statusCode < 300) {
      // Delivered, whatever becomes of the rest of the response. Reading it
      // to the end keeps the socket reusable (dump() drops it past 128 KiB).
      await responseBody.dump().catch(() => {})
      return OK
    }
    return classifyStatus(statusCode, headers['retry-after'], await readSnippet(responseBody))
  }

  /**
   * After a 413: sends the two halves one after the other, recursively down
   * to single items, and returns the items that still failed. Once a part
   * fails retryably (the server is struggling), the parts not tried yet are
   * returned as retryable with the same status instead of being sent.
   */
  async function split(
    batch: Batch,
    encoded: EncodedItems,
    indices: readonly number[],
    tooLarge: Outcome,
    signal: AbortSignal,
  ): Promise<ItemFailure[]> {
    const failures: ItemFailure[] = []
    let halt: Failed | undefined
    const visit = async (ids: readonly number[], known?: Outcome): Promise<void> => {
      if (halt) return void failures.push(...failAll(ids, halt))
      const outcome = known ?? (await post(encoded, ids, partKey(batch, ids), signal))
      switch (outcome.kind) {
        case 'ok':
          return
        case 'too-large': {
          if (ids.length === 1) {
            const reason = `${outcome.reason} (the item alone is larger than the target accepts)`
            return void failures.push(...failAll(ids, { kind: 'permanent', status: 413, reason }))
          }
          const mid = Math.ceil(ids.length / 2)
          await visit(ids.slice(0, mid))
          await visit(ids.slice(mid))
          return
        }
        case 'retry':
          halt = outcome
          return void failures.push(...failAll(ids, outcome))
        case 'permanent':
          return void failures.push(...failAll(ids, outcome))
        default: {
          const never: never = outcome
          throw new TypeError(`unknown outcome ${JSON.stringify(never)}`)
        }
      }
    }
    await visit(indices, tooLarge)
    return failures
  }

  return {
    async send(batch, ctx) {
      const encoded = encodeItems(batch, o.format)
      const { indices, failed } = encoded
      if (indices.length === 0) return { failed }
      const outcome = await post(encoded, indices, batch.key, ctx.signal)
      switch (outcome.kind) {
        case 'ok':
          return failed.length > 0 ? { failed } : undefined
        case 'too-large':
          return { failed: [...failed, ...(await split(batch, encoded, indices, outcome, ctx.signal))] }
        case 'retry':
        case 'permanent':
          // The whole batch failed alike: one error (retried whole, or all
          // dead-lettered). With unencodable items beside it, per-item
          // failures, so that those are dead-lettered and not retried.
          if (failed.length === 0) throw toSendError(outcome)
          return { failed: [...failed, ...failAll(indices, outcome)] }
        default: {
          const never: never = outcome
          throw new TypeError(`unknown outcome ${JSON.stringify(never)}`)
        }
      }
    },

    /** Closes the pool once the requests in flight are answered. Idempotent. */
    close() {
      closed ??= pool.close()
      return closed
    },
  }
})
export default createHttpSender

function failAll(indices: readonly number[], outcome: Failed): ItemFailure[] {
  const { reason, status } = outcome
  const retryAfterMs = outcome.kind === 'retry' ? outcome.retryAfterMs : undefined
  return indices.map((index) => ({
    index,
    retryable: outcome.kind === 'retry',
    reason,
    ...(status !== undefined ? { status } : {}),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  }))
}

function toSendError(outcome: Failed): SendError {
  const retryAfterMs = outcome.kind === 'retry' ? outcome.retryAfterMs : undefined
  return new SendError(outcome.reason, {
    retryable: outcome.kind === 'retry',
    ...(outcome.status !== undefined ? { status: outcome.status } : {}),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    ...(outcome.cause !== undefined ? { cause: outcome.cause } : {}),
    ...(outcome.kind === 'retry' && outcome.misconfigured ? { misconfigured: true } : {}),
  })
}

/** The start of an error response's body, on one line, for the failure's reason. */
async function readSnippet(body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (size < SNIPPET_BYTES) chunks.push(chunk)
      size += chunk.byteLength
      if (size > DRAIN_LIMIT_BYTES) break // leaving the loop destroys the stream and its socket
    }
  } catch {
    // The status decides; a body cut short only shortens the reason.
  }
  const text = Buffer.concat(chunks).subarray(0, SNIPPET_BYTES).toString('utf8')
  return text.replace(/\s+/g, ' ').trim().slice(0, 200)
}

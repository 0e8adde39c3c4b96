/** What one request's outcome means for the items it carried. */
export type Outcome =
  | { readonly kind: 'ok' }
  /** 413: split the items and try again. */
  | { readonly kind: 'too-large'; readonly status: 413; readonly reason: string }
  | {
      readonly kind: 'retry'
      readonly reason: string
      readonly status?: number
      readonly retryAfterMs?: number
      readonly cause?: unknown
      /** The target cannot be reached as configured (TLS verification failed): see TLS_VERIFY_CODES. */
      readonly misconfigured?: boolean
    }
  | {
      readonly kind: 'permanent'
      readonly reason: string
      readonly status?: number
      readonly cause?: unknown
    }

export const OK: Outcome = Object.freeze({ kind: 'ok' })

/**
 * Status classification (the status of a response the server did send):
 *   2xx                  ok: the items are delivered
 *   408, 429, 5xx        retryable, after `Retry-After` when given
 *   413                  too large: split the batch (a single item: permanent)
 *   other 1xx, 3xx, 4xx  permanent (redirects are not followed: fix the URL)
 */
export function classifyStatus(
  status: number,
  retryAfter: string | string[] | undefined,
  snippet: string,
): Outcome {
  if (status >= 200 && status < 300) return OK
  const reason = `HTTP ${status}${snippet ? `: ${snippet}` : ''}`
  if (status === 413) return { kind: 'too-large', status, reason }
  if (status === 408 || status === 429 || status >= 500) {
    const retryAfterMs = parseRetryAfter(retryAfter)
    return retryAfterMs === undefined
      ? { kind: 'retry', reason, status }
      : { kind: 'retry', reason, status, retryAfterMs }
  }
  return { kind: 'permanent', reason, status }
}

/**
 * undici codes that mean the request itself is malformed: sending it again
 * cannot help. Everything else thrown by a request (connection refused or
 * reset, DNS, TLS, connect/headers/body timeouts, `ctx.signal` aborting, the
 * pool closed under a send) is retryable: a later attempt, maybe on another
 * sender thread, may succeed.
 */
const PERMANENT_CODES: ReadonlySet<string> = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED'])

/**
 * The server's certificate did not verify (OpenSSL's X509_V_ERR_* names as
 * Node gives them, and Node's own hostname check). Trying again cannot help
 * until the configuration changes — `tls.ca`, `tls.servername`, the URL's
 * host — or the server's certificate is fixed: the items are kept (retried,
 * never dead-lettered as permanent) but the failure is `misconfigured`, so
 * the queue opens its circuit at once and reports it instead of spinning.
 */
const TLS_VERIFY_CODES: ReadonlySet<string> = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
])

export function classifyError(err: unknown): Outcome {
  const e = err as { code?: unknown; name?: unknown; message?: unknown; cause?: { code?: unknown } } | null
  const code = typeof e?.code === 'string' ? e.code : undefined
  const causeCode = typeof e?.cause?.code === 'string' ? e.cause.code : undefined
  const label = [code ?? (typeof e?.name === 'string' ? e.name : 'Error'), causeCode]
    .filter(Boolean)
    .join('/')
  const reason = `${label}: ${typeof e?.message === 'string' ? e.message : String(err)}`
  if (code !== undefined && PERMANENT_CODES.has(code)) return { kind: 'permanent', reason, cause: err }
  const tls = [code, causeCode].find((c) => c !== undefined && TLS_VERIFY_CODES.has(c))
  if (tls !== undefined) {
    return {
      kind: 'retry',
      misconfigured: true,
      reason: `${reason} (TLS: the server's certificate did not verify — ${tls}; check tls.ca, tls.servername and the URL's host, or the server's certificate)`,
      cause: err,
    }
  }
  return { kind: 'retry', reason, cause: err }
}

/**
 * `Retry-After` (RFC 9110 §10.2.3) as a delay in ms: delay-seconds or an
 * HTTP-date (a date in the past is 0). undefined when absent or unreadable.
 */
export function parseRetryAfter(
  value: string | string[] | undefined,
  now: number = Date.now(),
): number | undefined {
  const v = (Array.isArray(value) ? value[0] : value)?.trim()
  if (!v) return undefined
  if (/^\d+$/.test(v)) return Number(v) * 1000
  // Every HTTP-date form starts with a day name; the check keeps Date.parse's
  // leniency (it reads "1.5" as a date) out.
  if (!/^[A-Za-z]{3}/.test(v)) return undefined
  const at = Date.parse(v)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

// A real node:http target for the HTTP sender tests: it decodes each body by
// its content-type (and content-encoding), records what it accepted, and lets
// each test script its answers per request (fail, hang, reset, 413, …).
import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import { gunzipSync } from 'node:zlib'

import * as msgpackrModule from 'msgpackr'

/** The server decodes msgpack bodies with msgpackr (the codec the queue encodes with). */
export const msgpackr: { pack(value: unknown): Uint8Array; unpack(bytes: Uint8Array): unknown } =
  msgpackrModule

/** One request, as the handler sees it. */
export interface Exchange {
  /** 1 for the first request the target received, then 2, 3, … */
  readonly n: number
  readonly req: IncomingMessage
  readonly res: ServerResponse
  /** The request body, gunzipped when `content-encoding: gzip`. */
  body(): Promise<Buffer>
  /** The body's items, decoded by content-type (json array, ndjson, msgpack array). */
  items(): Promise<unknown[]>
  /** Reads the items, records them as delivered, answers `status` (default 200). */
  accept(status?: number): Promise<unknown[]>
  /** Reads the body, then answers without recording anything. */
  reply(status: number, headers?: Record<string, string>, body?: string): Promise<void>
  /** Answers at once, the request body unread, and closes the connection (nginx's 413 does so). */
  replyEarly(status: number, body?: string): void
}

export interface RequestRecord {
  readonly n: number
  /** performance.now() when its headers arrived. */
  readonly at: number
  readonly method: string
  readonly url: string
  readonly headers: IncomingMessage['headers']
  /** Status answered (undefined: never answered). */
  status?: number
  /** Body bytes on the wire (before gunzip). */
  wireBytes?: number
}

export interface Target {
  readonly url: string
  /** Items of the requests answered 2xx, in arrival order. */
  readonly delivered: unknown[]
  readonly requests: RequestRecord[]
  /** Handler failures (a test bug or a malformed body); a test expects none. */
  readonly errors: unknown[]
  /** Sockets currently open. */
  readonly sockets: Set<Socket>
  /** Most requests being handled at once. */
  readonly maxConcurrent: number
  close(): Promise<void>
}

export type Handler = (x: Exchange) => void | Promise<void>

/** A self-signed certificate for 127.0.0.1 and localhost (valid until 2126), and its key. */
export const localhostCert: { readonly cert: string; readonly key: string } = {
  cert: readFileSync(new URL('./localhost-cert.pem', import.meta.url), 'utf8'),
  key: readFileSync(new URL('./localhost-key.pem', import.meta.url), 'utf8'),
}

/** Starts a target on 127.0.0.1, port 0; `https` serves the localhost certificate. */
export async function startTarget(
  handler: Handler = (x) => x.accept().then(() => {}),
  { https = false }: { https?: boolean } = {},
): Promise<Target> {
  const delivered: unknown[] = []
  const requests: RequestRecord[] = []
  const errors: unknown[] = []
  const sockets = new Set<Socket>()
  let concurrent = 0
  let maxConcurrent = 0

  const listener: RequestListener = (req, res) => {
    concurrent++
    maxConcurrent = Math.max(maxConcurrent, concurrent)
    res.once('close', () => concurrent--)
    const record: RequestRecord = {
      n: requests.length + 1,
      at: performance.now(),
      method: req.method!,
      url: req.url!,
      headers: req.headers,
    }
    requests.push(record)

    let bodyPromise: Promise<Buffer> | undefined
    const body = (): Promise<Buffer> =>
      (bodyPromise ??= (async () => {
        const chunks: Buffer[] = []
        for await (const chunk of req) chunks.push(chunk as Buffer)
        const wire = Buffer.concat(chunks)
        record.wireBytes = wire.byteLength
        return req.headers['content-encoding'] === 'gzip' ? gunzipSync(wire) : wire
      })())
    const items = async (): Promise<unknown[]> => decode(req.headers['content-type'], await body())
    const reply = async (status: number, headers: Record<string, string> = {}, text = ''): Promise<void> => {
      await body()
      record.status = status
      res.writeHead(status, headers).end(text)
    }
    const x: Exchange = {
      n: record.n,
      req,
      res,
      body,
      items,
      reply,
      replyEarly(status, text = '') {
        record.status = status
        res.writeHead(status, { connection: 'close' }).end(text)
      },
      async accept(status = 200) {
        const got = await items()
        delivered.push(...got)
        await reply(status)
        return got
      },
    }
    Promise.resolve()
      .then(() => handler(x))
      .catch((err: unknown) => {
        errors.push(err)
        if (!res.headersSent) res.writeHead(400).end(`target handler failed: ${String(err)}`)
      })
  }
  const server = https ? createHttpsServer(localhostCert, listener) : createServer(listener)
  server.on(https ? 'secureConnection' : 'connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo

  return {
    url: `${https ? 'https' : 'http'}://127.0.0.1:${port}`,
    delivered,
    requests,
    errors,
    sockets,
    get maxConcurrent() {
      return maxConcurrent
    },
    close() {
      server.closeAllConnections()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

function decode(contentType: string | undefined, body: Buffer): unknown[] {
  switch (contentType) {
    case 'application/json': {
      const value = JSON.parse(body.toString('utf8'))
      if (!Array.isArray(value)) throw new TypeError('json body is not an array')
      return value
    }
    case 'application/x-ndjson': {
      const text = body.toString('utf8')
      if (!text.endsWith('\n')) throw new TypeError('ndjson body does not end with a newline')
      return text
        .slice(0, -1)
        .split('\n')
        .map((line) => JSON.parse(line))
    }
    case 'application/msgpack': {
      const value = msgpackr.unpack(body)
      if (!Array.isArray(value)) throw new TypeError('msgpack body is not an array')
      return value
    }
    default:
      throw new TypeError(`unexpected content-type ${contentType}`)
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `fn` until it returns true (bounded). */
export async function waitFor(fn: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!fn()) {
    if (Date.now() > deadline) throw new Error('waitFor: condition not met in time')
    await sleep(10)
  }
}

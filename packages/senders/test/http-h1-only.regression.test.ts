import { once } from 'node:events'
import { createSecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { httpHarness } from './fixtures-http/harness.ts'
import { localhostCert } from './fixtures-http/target.ts'

// undici 8 negotiates HTTP/2 by default when a TLS server offers it (ALPN).
// The HTTP sender documents HTTP/1.1 semantics (`connections` sockets,
// `pipelining` requests per socket, `pipelining: 0` = a socket per request),
// so it keeps HTTP/1.1 against a server that offers both.
const { queue } = httpHarness({ flushIntervalMs: 10 })

describe('@vinequeue/senders/http: HTTP/1.1 only', () => {
  it('speaks HTTP/1.1 to a TLS server that offers h2 and http/1.1', async () => {
    const versions: string[] = []
    const server = createSecureServer(
      { ...localhostCert, allowHTTP1: true },
      (req: Http2ServerRequest, res: Http2ServerResponse) => {
        versions.push(req.httpVersion)
        req.resume()
        req.on('end', () => res.end())
      },
    )
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    try {
      const { port } = server.address() as AddressInfo
      const q = queue({
        url: `https://127.0.0.1:${port}/`,
        tls: { ca: Buffer.from(localhostCert.cert), servername: 'localhost' },
      })
      await q.start()
      for (let i = 0; i < 50; i++) q.enqueue({ i })
      await q.drain()
      expect(q.metrics()).toMatchObject({ sentTotal: 50, errorsTotal: 0 })
      expect(versions.length).toBeGreaterThan(0)
      expect(new Set(versions)).toEqual(new Set(['1.1']))
    } finally {
      server.close() // (the harness stops the queue, closing its sockets, after the test)
    }
  })
})

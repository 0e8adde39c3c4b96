import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { InvalidConfigError, SendError } from '@vinequeue/core'
import type { HttpSenderOptions } from '@vinequeue/senders/http'
import { afterEach, describe, expect, it } from 'vitest'
import { httpHarness } from './fixtures-http/harness.ts'
import { sleep, waitFor } from './fixtures-http/target.ts'

// A certificate that does not verify is a configuration error: retrying
// cannot help. The queue must keep the items, open its circuit at once and
// say so (error event, health down) instead of retrying in a loop.
const { queue, tempDir } = httpHarness({ flushIntervalMs: 10, retryInitialDelayMs: 5, retryMaxDelayMs: 20 })

/** A self-signed certificate for the DNS name `localhost` only (no IP address), made with openssl. */
function selfSigned(dir: string): { cert: string; key: string } {
  const key = join(dir, 'key.pem')
  const cert = join(dir, 'cert.pem')
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2'],
      ...['-keyout', key, '-out', cert, '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'],
    ],
    { stdio: 'ignore' },
  )
  return { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') }
}

const servers: Server[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r))
})

async function httpsTarget(tls: { cert: string; key: string }): Promise<{ url: string; items: unknown[] }> {
  const items: unknown[] = []
  const server = createServer(tls, (req, res) => {
    let body = ''
    req.on('data', (d) => (body += d))
    req.on('end', () => {
      items.push(...JSON.parse(body))
      res.end()
    })
  })
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  server.unref()
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/`, items }
}

describe('HTTP sender: a TLS certificate that does not verify (regression: retried in a loop)', () => {
  const cases: Array<[string, (cert: string) => Partial<HttpSenderOptions>, RegExp]> = [
    ['self-signed, no tls.ca', () => ({}), /DEPTH_ZERO_SELF_SIGNED_CERT/],
    [
      'trusted, but issued for another host name',
      (cert) => ({ tls: { ca: cert } }),
      /ERR_TLS_CERT_ALTNAME_INVALID/,
    ],
  ]
  for (const [name, options, code] of cases) {
    it(`${name}: circuit open at once, error event, health down; items kept`, async () => {
      const tls = selfSigned(tempDir())
      const t = await httpsTarget(tls)
      const q = queue({ url: t.url, ...options(tls.cert) })
      const errors: Error[] = []
      q.on('error', (err) => errors.push(err))
      await q.start()
      for (let i = 0; i < 10; i++) q.enqueue({ i })
      await waitFor(() => errors.length > 0)
      const err = errors[0] as SendError
      expect(err).toBeInstanceOf(SendError)
      expect(err).toMatchObject({ misconfigured: true, retryable: true })
      expect(err.message).toMatch(code)
      expect(err.message).toMatch(/check tls\.ca, tls\.servername/)
      expect(q.health().status).toBe('down')
      expect(q.health().reasons.join()).toMatch(/sender misconfigured: .*certificate did not verify/)
      await sleep(300)
      const m = q.metrics()
      expect(m.circuitState).toBe('open')
      expect(m.circuitOpensTotal).toBe(1)
      // Not spinning: only the sends that were out when it failed (at most maxInFlightBatches).
      expect(m.errorsTotal).toBeLessThanOrEqual(2)
      expect(m.deadLetteredTotal).toBe(0)
      expect(errors).toHaveLength(1)
      const report = await q.stop({ timeoutMs: 200 })
      expect(report.undeliveredCount).toBe(10)
      expect(t.items).toEqual([])
    })
  }

  it('with the right tls.ca and servername the same server gets every item', async () => {
    const tls = selfSigned(tempDir())
    const t = await httpsTarget(tls)
    const q = queue({ url: t.url, tls: { ca: tls.cert, servername: 'localhost' } })
    await q.start()
    for (let i = 0; i < 10; i++) q.enqueue({ i })
    await q.drain()
    expect(t.items).toHaveLength(10)
    expect(q.health().status).toBe('ok')
  })
})

describe('HTTP sender options refused at start() as InvalidConfigError', () => {
  it("tls.ca: 'not a pem'", async () => {
    const q = queue({ url: 'https://127.0.0.1:1/', tls: { ca: 'not a pem' } })
    const err = await q.start().then(
      () => undefined,
      (e: Error) => e,
    )
    expect(err).toBeInstanceOf(InvalidConfigError)
    expect(err!.message).toMatch(/refused its options: .*tls\.ca: not a PEM certificate/s)
  })

  it('a certificate block that does not parse, a key that is not one', async () => {
    const bad = '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n'
    const q = queue({ url: 'https://127.0.0.1:1/', tls: { ca: [bad], cert: bad, key: 'nope' } })
    const started = q.start()
    await expect(started).rejects.toBeInstanceOf(InvalidConfigError)
    await expect(started).rejects.toThrow(/tls\.ca\[0\]: a certificate does not parse/)
    await expect(started).rejects.toThrow(/tls\.cert: a certificate does not parse/)
    await expect(started).rejects.toThrow(/tls\.key: not a PEM private key/)
  })
})

import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createQueue, type DeadLetter, InvalidConfigError, SendError } from '@vinequeue/core'
import createHttpSender, { type HttpSenderOptions } from '@vinequeue/senders/http'
import { describe, expect, it } from 'vitest'
import { expectEachOnce, httpHarness } from './fixtures-http/harness.ts'
import { localhostCert, msgpackr, sleep, waitFor } from './fixtures-http/target.ts'
import { inThreadQueue } from './in-thread-queue.ts'

const { target, queue, track } = httpHarness({
  flushIntervalMs: 10,
  retryInitialDelayMs: 5,
  retryMaxDelayMs: 20,
})

describe('@vinequeue/senders/http: delivery', () => {
  it('sends each batch as one request to the URL, with the headers, every item exactly once', async () => {
    const t = await target()
    const q = queue(
      { url: `${t.url}/ingest?tenant=7`, headers: { Authorization: 'Bearer abc', 'X-Source': 'vq' } },
      { senderThreads: 2 },
    )
    await q.start()
    for (let i = 0; i < 1000; i++) q.enqueue({ i, user: `u${i % 7}` })
    await q.drain()

    expectEachOnce(t.delivered, 1000)
    const m = q.metrics()
    expect(m.sentTotal).toBe(1000)
    expect(t.requests).toHaveLength(m.batchesSentTotal)
    for (const r of t.requests) {
      expect(r).toMatchObject({ method: 'POST', url: '/ingest?tenant=7', status: 200 })
      expect(r.headers).toMatchObject({
        authorization: 'Bearer abc',
        'x-source': 'vq',
        'content-type': 'application/json',
      })
      expect(r.headers['content-encoding']).toBeUndefined()
    }
  })

  const contentTypes = {
    json: 'application/json',
    ndjson: 'application/x-ndjson',
    msgpack: 'application/msgpack',
  }
  for (const format of ['json', 'ndjson', 'msgpack'] as const) {
    for (const gzip of [false, true]) {
      it(`format ${format}${gzip ? ' + gzip' : ''}: the server decodes every item, raw ones included`, async () => {
        const t = await target()
        const q = queue({ url: t.url, format, gzip, method: 'PUT' })
        await q.start()
        const items = [
          { i: 0, text: 'ünïcödé ✓ "quoted"\nnewline' },
          { i: 1, nested: { list: [1, 2.5, null, true], empty: {} } },
          { i: 2, n: -123456789 },
        ]
        for (const item of items) q.enqueue(item)
        q.enqueueBatch([
          { i: 3, grouped: 'a' },
          { i: 4, grouped: 'b' },
        ])
        // enqueueRaw: the caller's own encoding, spliced into the body unchanged.
        const raw = { i: 5, raw: true }
        q.enqueueRaw(
          format === 'msgpack' ? msgpackr.pack(raw) : new TextEncoder().encode(JSON.stringify(raw)),
        )
        await q.drain()

        const byId = new Map(t.delivered.map((item) => [(item as { i: number }).i, item]))
        expect(t.delivered).toHaveLength(6)
        expect([...byId.values()]).toHaveLength(6)
        for (const item of [...items, { i: 3, grouped: 'a' }, { i: 4, grouped: 'b' }, raw]) {
          expect(byId.get(item.i)).toEqual(item)
        }
        for (const r of t.requests) {
          expect(r.method).toBe('PUT')
          expect(r.headers['content-type']).toBe(contentTypes[format])
          expect(r.headers['content-encoding']).toBe(gzip ? 'gzip' : undefined)
        }
        expect(q.metrics().sentTotal).toBe(6)
      })
    }
  }

  it('msgpack: the array header fits the count (fixarray, array 16, array 32)', async () => {
    const headers: number[] = []
    const t = await target(async (x) => {
      headers.push((await x.body())[0]!)
      await x.accept()
    })
    const q = queue(
      { url: t.url, format: 'msgpack' },
      { maxBatchSize: 70_000, maxBatchBytes: 8 << 20, flushIntervalMs: 60_000 },
    )
    await q.start()
    let i = 0
    for (const size of [15, 65_535, 70_000]) {
      for (const end = i + size; i < end; i++) q.enqueue({ i })
      await q.flush()
    }
    await q.drain()
    expectEachOnce(t.delivered, i)
    // (In any order: flush() cuts a batch, and two sends run at once, so the
    // 70,000-item body can arrive before the 65,535-item one.)
    expect([...headers].sort((a, b) => a - b)).toEqual([0x90 | 15, 0xdc, 0xdd])
    expect(q.metrics()).toMatchObject({ sentTotal: i, batchesSentTotal: 3 })
  })

  it('dead-letters only the items JSON cannot encode; the rest of the batch is delivered', async () => {
    const t = await target()
    const letters: DeadLetter[] = []
    const q = queue({ url: t.url, format: 'ndjson' }, { onDeadLetter: (d) => letters.push(d) })
    await q.start()
    q.enqueueBatch([{ i: 0 }, { i: 99, big: 1n }, { i: 1 }])
    await q.drain()
    expectEachOnce(t.delivered, 2)
    expect(letters).toHaveLength(1)
    expect(letters[0]!.items).toEqual([{ i: 99, big: 1n }])
    expect(letters[0]!.reason).toMatch(/not JSON-serializable/)
    expect(q.metrics()).toMatchObject({ sentTotal: 2, deadLetteredTotal: 1, retriesTotal: 0 })
  })
})

describe('@vinequeue/senders/http: retryable failures', () => {
  it('503 three times, then 200: the batch is retried until delivered, each retry counted', async () => {
    const t = await target((x) => (x.n <= 3 ? x.reply(503, {}, 'overloaded') : x.accept().then(() => {})))
    const q = queue({ url: t.url }, { flushIntervalMs: 60_000 }) // one batch: cut at 100 items
    await q.start()
    for (let i = 0; i < 100; i++) q.enqueue({ i })
    await q.drain()

    expectEachOnce(t.delivered, 100)
    expect(t.requests.map((r) => r.status)).toEqual([503, 503, 503, 200])
    expect(q.metrics()).toMatchObject({
      sentTotal: 100,
      batchesSentTotal: 1,
      errorsTotal: 3,
      retriesTotal: 3,
      deadLetteredTotal: 0,
    })
  })

  it('429 with Retry-After: the retry waits at least that long', async () => {
    const t = await target((x) =>
      x.n === 1 ? x.reply(429, { 'retry-after': '1' }) : x.accept().then(() => {}),
    )
    // Backoff alone would retry within retryInitialDelayMs (5 ms); only Retry-After explains a longer wait.
    const q = queue({ url: t.url }, { flushIntervalMs: 60_000, retryMaxDelayMs: 5000 })
    await q.start()
    for (let i = 0; i < 100; i++) q.enqueue({ i })
    await q.drain()

    expectEachOnce(t.delivered, 100)
    expect(t.requests.map((r) => r.status)).toEqual([429, 200])
    expect(t.requests[1]!.at - t.requests[0]!.at).toBeGreaterThanOrEqual(900) // loose: timers are coarse
    expect(q.metrics()).toMatchObject({ sentTotal: 100, retriesTotal: 1 })
  })

  it('throws a retryable SendError with the status and Retry-After (seconds or HTTP-date) as retryAfterMs', async () => {
    const inTwoSeconds = new Date(Date.now() + 2500).toUTCString()
    const t = await target((x) => {
      if (x.n === 1) return x.reply(503, { 'retry-after': inTwoSeconds })
      if (x.n === 2) return x.reply(429, { 'retry-after': '3' })
      if (x.n === 3) return x.reply(408)
      return x.accept().then(() => {})
    })
    // In-thread: the test sees exactly what the sender throws.
    const sender = await createHttpSender({ url: t.url })
    const errors: SendError[] = []
    const q = createQueue({
      send: async (batch, ctx) => {
        try {
          return await sender.send(batch, ctx)
        } catch (err) {
          errors.push(err as SendError)
          throw err
        }
      },
      maxBatchSize: 10,
      flushIntervalMs: 60_000,
      retryInitialDelayMs: 5,
      retryMaxDelayMs: 20, // caps Retry-After too: the test stays fast
    })
    track(q)
    await q.start()
    for (let i = 0; i < 10; i++) q.enqueue({ i })
    await q.drain()
    await sender.close!()

    expectEachOnce(t.delivered, 10)
    expect(errors.map((e) => [e instanceof SendError, e.retryable, e.status])).toEqual([
      [true, true, 503],
      [true, true, 429],
      [true, true, 408],
    ])
    // An HTTP-date has a 1 s resolution: 2.5 s ahead is 1.5 to 2.5 s away.
    expect(errors[0]!.retryAfterMs).toBeGreaterThan(1000)
    expect(errors[0]!.retryAfterMs).toBeLessThanOrEqual(2500)
    expect(errors[1]!.retryAfterMs).toBe(3000)
    expect(errors[2]!.retryAfterMs).toBeUndefined()
    expect(q.metrics()).toMatchObject({ sentTotal: 10, retriesTotal: 3 })
  })

  it('a server that hangs past headersTimeoutMs: retried, delivered once it answers', async () => {
    const t = await target(async (x) => {
      await x.body()
      if (x.n <= 2) return // never answers
      await x.accept()
    })
    const q = queue({ url: t.url, headersTimeoutMs: 200 }, { flushIntervalMs: 60_000 })
    await q.start()
    for (let i = 0; i < 100; i++) q.enqueue({ i })
    await q.drain()

    expectEachOnce(t.delivered, 100)
    expect(t.requests.map((r) => r.status)).toEqual([undefined, undefined, 200])
    expect(q.metrics()).toMatchObject({ sentTotal: 100, retriesTotal: 2, deadLetteredTotal: 0 })
  })

  it('a send that outlives sendTimeoutMs is aborted through ctx.signal and retried (no thread killed)', async () => {
    const t = await target(async (x) => {
      await x.body()
      if (x.n === 1) return // never answers
      await x.accept()
    })
    const q = queue({ url: t.url, headersTimeoutMs: 0 }, { flushIntervalMs: 60_000, sendTimeoutMs: 300 })
    await q.start()
    for (let i = 0; i < 100; i++) q.enqueue({ i })
    await q.drain()

    expectEachOnce(t.delivered, 100)
    expect(t.requests.map((r) => r.status)).toEqual([undefined, 200])
    // The send was aborted at sendTimeoutMs (one timeout, retried); its thread
    // kept running: nothing was terminated (that would count a sender failure).
    expect(q.metrics()).toMatchObject({
      sentTotal: 100,
      retriesTotal: 1,
      timeoutsTotal: 1,
      senderFailuresTotal: 0,
    })
  })

  it('a connection reset in the middle of the request body: retried, delivered', async () => {
    const t = await target((x) => {
      if (x.n <= 2) {
        x.req.once('data', () => x.req.socket.destroy())
        return
      }
      return x.accept().then(() => {})
    })
    const q = queue({ url: t.url }, { flushIntervalMs: 60_000 })
    await q.start()
    const pad = 'x'.repeat(2000) // ~200 KB per batch: the body is still being written
    for (let i = 0; i < 100; i++) q.enqueue({ i, pad })
    await q.drain()

    expectEachOnce(t.delivered, 100)
    expect(t.requests.map((r) => r.status)).toEqual([undefined, undefined, 200])
    expect(q.metrics()).toMatchObject({ sentTotal: 100, retriesTotal: 2, deadLetteredTotal: 0 })
  })

  it('connection refused: retried, delivered once the server listens', async () => {
    // A port that was free a moment ago; nothing listens on it at first.
    const probe = createServer()
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
    const { port } = probe.address() as AddressInfo
    await new Promise<void>((resolve) => probe.close(() => resolve()))

    const q = queue({ url: `http://127.0.0.1:${port}` }, { flushIntervalMs: 60_000 })
    await q.start()
    for (let i = 0; i < 100; i++) q.enqueue({ i })
    const drained = q.drain()
    await waitFor(() => q.metrics().retriesTotal >= 2)

    const delivered: unknown[] = []
    const server = createServer(async (req, res) => {
      const chunks: Buffer[] = []
      for await (const chunk of req) chunks.push(chunk as Buffer)
      delivered.push(...JSON.parse(Buffer.concat(chunks).toString()))
      res.end()
    })
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
    try {
      await drained
      expectEachOnce(delivered, 100)
      const m = q.metrics()
      expect(m).toMatchObject({ sentTotal: 100, deadLetteredTotal: 0 })
      expect(m.errorsTotal).toBe(m.retriesTotal)
    } finally {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  })
})

describe('@vinequeue/senders/http: permanent failures and splitting', () => {
  for (const early of [false, true]) {
    it(`413 above a body size${early ? ', answered before the body is read' : ''}: the batch is split until it fits, every item arrives exactly once`, async () => {
      const LIMIT = 4096
      const t = await target(async (x) => {
        if (early) {
          if (Number(x.req.headers['content-length']) > LIMIT) return x.replyEarly(413, 'payload too large')
        } else if ((await x.body()).byteLength > LIMIT) return x.reply(413, {}, 'payload too large')
        await x.accept()
      })
      const letters: DeadLetter[] = []
      const q = queue({ url: t.url }, { flushIntervalMs: 60_000, onDeadLetter: (d) => letters.push(d) })
      await q.start()
      const pad = 'x'.repeat(100) // ~120 B per item: 100 items ≈ 12 KB
      for (let i = 0; i < 100; i++) q.enqueue(i === 37 ? { i, pad: 'y'.repeat(LIMIT) } : { i, pad })
      await q.drain()

      // Item 37 alone is over the limit: it is the only one dead-lettered.
      const ids = t.delivered.map((item) => (item as { i: number }).i)
      expect(ids).toHaveLength(99)
      expect(new Set(ids).size).toBe(99)
      expect(ids).not.toContain(37)
      expect(letters).toHaveLength(1)
      expect(letters[0]!.items).toEqual([{ i: 37, pad: 'y'.repeat(LIMIT) }])
      expect(letters[0]!.reason).toMatch(/413.*larger than the target accepts/)
      expect(t.requests.filter((r) => r.status === 413).length).toBeGreaterThan(1)
      for (const r of t.requests) if (r.status === 200) expect(r.wireBytes).toBeLessThanOrEqual(LIMIT)
      expect(q.metrics()).toMatchObject({ sentTotal: 99, deadLetteredTotal: 1, retriesTotal: 0 })
    })
  }

  it('400: permanent, the batch is dead-lettered with the status and response text, never retried', async () => {
    const t = await target(async (x) => {
      const items = (await x.items()) as Array<{ poison?: boolean }>
      if (items.some((item) => item.poison)) return x.reply(400, {}, '{"error":"poison item"}')
      await x.accept()
    })
    const letters: DeadLetter[] = []
    const q = queue({ url: t.url }, { maxBatchSize: 50, onDeadLetter: (d) => letters.push(d) })
    await q.start()
    for (let i = 0; i < 50; i++) q.enqueue({ i, poison: i === 7 })
    await q.flush()
    for (let i = 50; i < 100; i++) q.enqueue({ i })
    await q.drain()

    expect(letters).toHaveLength(1)
    expect(letters[0]!.items).toHaveLength(50)
    expect(letters[0]!.reason).toMatch(/permanent failure: HTTP 400: \{"error":"poison item"\}/)
    expect(letters[0]!.attempts).toBe(1)
    const ids = t.delivered.map((item) => (item as { i: number }).i)
    expect(ids.sort((a, b) => a - b)).toEqual([...Array(50).keys()].map((k) => k + 50))
    expect(t.requests.map((r) => r.status)).toEqual([400, 200])
    expect(q.metrics()).toMatchObject({ sentTotal: 50, deadLetteredTotal: 50, retriesTotal: 0 })
  })
})

describe('@vinequeue/senders/http: TLS', () => {
  it('https with tls.ca (given as bytes): verified and delivered', async () => {
    const t = await target(undefined, { https: true })
    // A Buffer reaches the sender thread as a plain Uint8Array (structured clone).
    const q = queue({ url: t.url, tls: { ca: Buffer.from(localhostCert.cert), servername: 'localhost' } })
    await q.start()
    for (let i = 0; i < 100; i++) q.enqueue({ i })
    await q.drain()
    expectEachOnce(t.delivered, 100)
    expect(q.metrics()).toMatchObject({ sentTotal: 100, errorsTotal: 0 })
  })

  it('https with an untrusted certificate: refused (rejectUnauthorized defaults to true), retried as the circuit allows, dead-lettered past maxAttempts', async () => {
    const t = await target(undefined, { https: true })
    const letters: DeadLetter[] = []
    const errors: Error[] = []
    // (A certificate that does not verify opens the circuit at once: the retry is its probe.)
    const q = queue(
      { url: t.url },
      { maxAttempts: 2, onDeadLetter: (d) => letters.push(d), circuitBreaker: { resetTimeoutMs: 50 } },
    )
    q.on('error', (err) => errors.push(err))
    await q.start()
    for (let i = 0; i < 10; i++) q.enqueue({ i })
    await q.drain()
    expect(t.requests).toHaveLength(0)
    expect(letters.flatMap((d) => d.items)).toHaveLength(10)
    expect(letters[0]!.reason).toMatch(/gave up after 2 attempts: .*self.signed/i)
    expect(q.metrics()).toMatchObject({ sentTotal: 0, deadLetteredTotal: 10, circuitOpensTotal: 2 })
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatchObject({ misconfigured: true })
  })

  it('https with tls.rejectUnauthorized: false: delivered without verification', async () => {
    const t = await target(undefined, { https: true })
    const q = queue({ url: t.url, tls: { rejectUnauthorized: false } })
    await q.start()
    for (let i = 0; i < 100; i++) q.enqueue({ i })
    await q.drain()
    expectEachOnce(t.delivered, 100)
  })
})

describe('@vinequeue/senders/http: bounds and lifecycle', () => {
  const cases = [
    { name: 'connections: 1 per sender thread', threads: 2, concurrency: 2, connections: 1, bound: 2 },
    { name: 'the queue’s sends in flight', threads: 1, concurrency: 3, connections: 16, bound: 3 },
  ]
  for (const c of cases) {
    it(`slow responses: concurrent requests at the server stay within ${c.name} (≤ ${c.bound})`, async () => {
      const t = await target(async (x) => {
        await sleep(25)
        await x.accept()
      })
      const q = queue(
        { url: t.url, connections: c.connections },
        { senderThreads: c.threads, senderConcurrency: c.concurrency, maxBatchSize: 10, flushIntervalMs: 5 },
      )
      await q.start()
      for (let i = 0; i < 300; i++) q.enqueue({ i })
      await q.drain()

      expectEachOnce(t.delivered, 300)
      expect(t.maxConcurrent).toBeGreaterThanOrEqual(1)
      expect(t.maxConcurrent).toBeLessThanOrEqual(c.bound)
      expect(q.metrics().sentTotal).toBe(300)
    })
  }

  it('close() closes the pool: its sockets end, later sends fail retryably, a second close is a no-op', async () => {
    const t = await target()
    const sender = await createHttpSender({ url: t.url })
    const { q, errors, letters } = inThreadQueue(sender)
    track(q)
    await q.start()
    for (let i = 0; i < 50; i++) q.enqueue({ i })
    await q.drain()
    expectEachOnce(t.delivered, 50)
    expect(t.sockets.size).toBeGreaterThan(0) // kept alive

    await sender.close!()
    await waitFor(() => t.sockets.size === 0)
    await sender.close!()

    q.enqueue({ i: 50 })
    await q.drain()
    expect(errors).toHaveLength(2)
    for (const err of errors) {
      expect(err).toBeInstanceOf(SendError)
      expect(err).toMatchObject({
        retryable: true,
        message: expect.stringMatching(/UND_ERR_(CLOSED|DESTROYED)/),
      })
    }
    expect(letters.flatMap((d) => d.items)).toEqual([{ i: 50 }])
    expect(t.requests).toHaveLength(t.requests.filter((r) => r.status === 200).length)
    expect(q.metrics()).toMatchObject({ sentTotal: 50, deadLetteredTotal: 1 })
  })

  it('rejects bad options when the queue starts, naming every bad field', async () => {
    const q = queue({
      url: 'ftp://example.com/',
      format: 'xml',
      connections: 0,
      headers: { 'Content-Length': '3', 'bad header': 'x' },
      tls: { rejectUnauthorized: 'no' },
      colour: 'red',
    } as unknown as HttpSenderOptions)
    const started = q.start()
    await expect(started).rejects.toThrow(/url: must be http: or https:/)
    await expect(started).rejects.toThrow(/format: must be one of json, ndjson, msgpack/)
    await expect(started).rejects.toThrow(/connections: must be from 1/)
    await expect(started).rejects.toThrow(/headers.Content-Length: set by the sender/)
    await expect(started).rejects.toThrow(/"bad header" is not a valid header name/)
    await expect(started).rejects.toThrow(/tls.rejectUnauthorized: must be a boolean/)
    await expect(started).rejects.toThrow(/tls: only applies to https: URLs/)
    await expect(started).rejects.toThrow(/colour: unknown option/)
  })

  it('the factory throws an InvalidConfigError (VQ_INVALID_CONFIG) listing every issue, for a missing url as for values out of range', () => {
    expect(() => createHttpSender({} as HttpSenderOptions)).toThrow(InvalidConfigError)
    expect(() => createHttpSender({} as HttpSenderOptions)).toThrow(/url: required/)
    expect(() =>
      createHttpSender({ url: 'http://127.0.0.1:1', pipelining: 1000, headersTimeoutMs: -1 }),
    ).toThrow(InvalidConfigError)
    expect(() =>
      createHttpSender({ url: 'http://127.0.0.1:1', pipelining: 1000, headersTimeoutMs: -1 }),
    ).toThrow(
      /headersTimeoutMs: must be from 0 to \d+ ms \(got -1\)\n\s+(- )?pipelining: must be from 0 to 128 requests \(got 1000\)/,
    )
    const err = ((): unknown => {
      try {
        createHttpSender({ url: 'http://127.0.0.1:1', pipelining: 1000, headersTimeoutMs: -1 })
      } catch (e) {
        return e
      }
    })()
    expect(err).toMatchObject({ code: 'VQ_INVALID_CONFIG' })
    expect((err as InvalidConfigError).issues).toEqual([
      'headersTimeoutMs: must be from 0 to 86400000 ms (got -1)',
      'pipelining: must be from 0 to 128 requests (got 1000)',
    ])
    expect(() => createHttpSender({ url: 'http://127.0.0.1:1', keepAliveTimeoutMs: 1.5 })).toThrow(
      /keepAliveTimeoutMs: must be an integer/,
    )
  })
})

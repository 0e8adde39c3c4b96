import { spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { CircuitState, Queue, QueueOptions } from '@vinequeue/core'
import { scanSegment } from '@vinequeue/wal'
import { describe, expect, it } from 'vitest'
import { expectEachOnce, httpHarness, ids } from './fixtures-http/harness.ts'
import { sleep, type Target, waitFor } from './fixtures-http/target.ts'

// Downstream outages against a real node:http server, through the HTTP sender
// loaded by package name into the sender pool (from dist: build first): the
// circuit breaker, the WAL carrying an outage longer than memory across a
// graceful stop, and across a SIGKILL.
const child = fileURLToPath(new URL('./fixtures-http/wal-http-child.mjs', import.meta.url))

const { target, queue, tempDir } = httpHarness({
  flushIntervalMs: 5,
  retryInitialDelayMs: 5,
  retryMaxDelayMs: 50,
})

/** A target that answers 503 while `down` is set, else accepts (records) every item. */
async function flakyTarget(): Promise<Target & { down: boolean }> {
  const t: Target & { down: boolean } = Object.assign(
    await target((x) => (t.down ? x.reply(503, {}, 'down for maintenance') : x.accept().then(() => {}))),
    { down: false },
  )
  return t
}

const pad = 'x'.repeat(80)
async function feed(q: Queue, from: number, n: number): Promise<void> {
  for (let i = from; i < from + n; i++) await q.enqueueAsync({ i, pad })
}

/**
 * The watermark a restart starts from: the `ack` file's (16 bytes: 'VQWA', u64 LE, CRC32C) or
 * the highest acknowledgement record in the segments, whichever is higher; 0 when neither.
 * (During an outage nothing settles, so the file can stay behind the records written last.)
 */
function watermark(dir: string): number {
  const file = join(dir, 'ack')
  let acked = 0
  if (existsSync(file)) {
    const bytes = readFileSync(file)
    expect(bytes.readUInt32LE(0)).toBe(0x41575156)
    acked = Number(bytes.readBigUInt64LE(4))
  }
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.wal'))) {
    acked = Math.max(acked, scanSegment(readFileSync(join(dir, name))).ackedSeq ?? 0)
  }
  return acked
}

describe('@vinequeue/senders/http: circuit breaker against a real server', () => {
  it('a sustained 503 outage opens it; while open the server sees only probes, at most one per reset timeout, and nothing spins; recovery closes it; every item arrives once', async () => {
    const RESET_MS = 400
    const t = await flakyTarget()
    t.down = true
    const q = queue(
      { url: t.url },
      {
        maxBatchSize: 10,
        circuitBreaker: {
          minimumRequests: 4,
          failureRateThreshold: 0.5,
          windowMs: 10_000,
          resetTimeoutMs: RESET_MS,
          halfOpenProbes: 1,
        },
      },
    )
    const states: CircuitState[] = []
    q.on('circuit', (s) => states.push(s))
    await q.start()
    for (let i = 0; i < 500; i++) q.enqueue({ i })

    // Open, with nothing on the wire: every request the server gets from now on was sent while open.
    // (The metrics are read from shared memory; the 'circuit' event comes by message, maybe later.)
    await waitFor(() => {
      const m = q.metrics()
      return m.circuitState === 'open' && m.inFlightBatches === 0 && states.length > 0
    }, 10_000)
    expect(states[0]).toBe('open')
    expect(q.health().reasons.join()).toMatch(/circuit open/)
    const r0 = t.requests.length
    const m0 = q.metrics()
    const t0 = performance.now()
    const cpu0 = process.cpuUsage()
    await sleep(6 * RESET_MS)
    const cpu = process.cpuUsage(cpu0)
    const m1 = q.metrics()
    const t1 = performance.now()
    const window = t.requests.slice(r0)

    const probes = m1.circuitProbesTotal - m0.circuitProbesTotal
    // Every request in the window is a probe (± the one that may be on its way at either end).
    expect(window.length).toBeLessThanOrEqual(probes + 1)
    expect(window.length).toBeGreaterThanOrEqual(probes - 1)
    expect(probes).toBeGreaterThanOrEqual(1)
    expect(probes).toBeLessThanOrEqual(Math.floor((t1 - t0) / RESET_MS) + 1)
    // One per reset timeout: a probe goes out only a reset timeout after the last one failed.
    for (let k = 1; k < window.length; k++) {
      expect(window[k]!.at - window[k - 1]!.at).toBeGreaterThanOrEqual(RESET_MS - 5)
    }
    for (const r of window) expect([503, undefined]).toContain(r.status) // (the last may still be answering)
    // Nothing busy-loops: retries and errors follow the probes; the process mostly sleeps
    // (a spinning thread would use a whole core over the window).
    expect(m1.retriesTotal - m0.retriesTotal).toBeLessThanOrEqual(probes + 1)
    expect(m1.errorsTotal - m0.errorsTotal).toBeLessThanOrEqual(probes + 1)
    expect((cpu.user + cpu.system) / 1000).toBeLessThan(0.5 * (t1 - t0))
    // Each failed probe opened it again (the last may not have failed yet).
    expect(m1.circuitOpensTotal - m0.circuitOpensTotal).toBeGreaterThanOrEqual(probes - 1)
    expect(m1.circuitOpensTotal - m0.circuitOpensTotal).toBeLessThanOrEqual(probes)
    expect(m1.sentTotal).toBe(0)

    t.down = false
    await waitFor(() => q.metrics().circuitState === 'closed', 10_000)
    await q.drain()
    expectEachOnce(t.delivered, 500)
    expect(states).toContain('half-open')
    expect(states.at(-1)).toBe('closed')
    const m = q.metrics()
    expect(m).toMatchObject({ sentTotal: 500, deadLetteredTotal: 0, circuitState: 'closed' })
    expect(m.circuitOpensTotal).toBe(states.filter((s) => s === 'open').length)
    expect(m.circuitProbesTotal).toBeGreaterThanOrEqual(probes + 1) // the last one succeeded
  })
})

describe('@vinequeue/senders/http: adaptive concurrency against a real server', () => {
  it('a server that takes 3 requests at once and answers 503 past that: the limit settles near 3, few 503s, every item once', async () => {
    const CAPACITY = 3
    let active = 0
    const t = await target(async (x) => {
      if (active >= CAPACITY) return x.reply(503, {}, 'over capacity')
      active++
      try {
        await sleep(15)
        await x.accept()
      } finally {
        active--
      }
    })
    const run = async (adaptiveConcurrency: boolean) => {
      const q = queue(
        { url: t.url, connections: 16 },
        {
          maxBatchSize: 20,
          senderConcurrency: 12,
          maxInFlightBatches: 12,
          circuitBreaker: false,
          adaptiveConcurrency,
        },
      )
      await q.start()
      const before = t.requests.length
      let peakLimit = 0
      const sampler = setInterval(() => {
        peakLimit = Math.max(peakLimit, q.metrics().concurrencyLimit)
      }, 2)
      await feed(q, 0, 3000)
      await q.drain()
      clearInterval(sampler)
      const answered = t.requests.slice(before)
      return { rejected: answered.filter((r) => r.status === 503).length, metrics: q.metrics(), peakLimit }
    }
    const fixed = await run(false)
    const adaptive = await run(true)
    expect(fixed.metrics.concurrencyLimit).toBe(12)
    expect(fixed.rejected).toBeGreaterThan(50)
    expect(adaptive.rejected).toBeLessThan(fixed.rejected / 3)
    // It climbed to the capacity (from 1) and stayed near it.
    expect(adaptive.peakLimit).toBeGreaterThanOrEqual(3)
    expect(adaptive.peakLimit).toBeLessThanOrEqual(8)
    expect(adaptive.metrics.concurrencyLimit).toBeLessThanOrEqual(6)
    expect(t.maxConcurrent).toBeGreaterThan(CAPACITY) // (the fixed run did go past the capacity)
    const byId = new Map<number, number>()
    for (const id of ids(t.delivered)) byId.set(id, (byId.get(id) ?? 0) + 1)
    // Each run sent ids 0..2999 once: every id arrived exactly twice over the two runs.
    expect(byId.size).toBe(3000)
    expect([...byId.values()].every((c) => c === 2)).toBe(true)
  }, 60_000)
})

describe('@vinequeue/senders/http: an outage longer than memory, with the WAL', () => {
  for (const mode of ['first', 'spill'] as const) {
    it(`mode '${mode}': flush() resolves while the server answers 503, stop() leaves the rest in the log, a restart delivers every item exactly once`, async () => {
      const t = await flakyTarget()
      const dir = join(tempDir(), 'wal')
      const options: Partial<QueueOptions> = {
        ringBytes: 64 * 1024, // ~600 of these items: the outage is 30 times that
        maxItemBytes: 1024,
        circuitBreaker: { minimumRequests: 4, resetTimeoutMs: 200 },
        wal: { dir, mode, segmentBytes: 64 * 1024 },
      }
      const UP = 1000
      const N = 20_000
      const q1 = queue({ url: t.url }, options)
      await q1.start()
      await feed(q1, 0, UP)
      await q1.drain()
      t.down = true
      await feed(q1, UP, N)
      await q1.flush() // durable, although the server takes nothing
      const m = q1.metrics()
      expect(m.sentTotal).toBe(UP)
      expect(m.walSpilledTotal).toBeGreaterThan(N / 2)
      const report = await q1.stop({ timeoutMs: 300 })
      expect(report.timedOut).toBe(true)
      expect(report.delivered).toBe(UP)
      expect(t.delivered).toHaveLength(UP)
      expect(report.walPendingItems).toBe(UP + N - t.delivered.length)

      t.down = false
      const q2 = queue({ url: t.url }, options)
      const recovered = new Promise<{ items: number }>((resolve) => q2.once('recovered', resolve))
      await q2.start()
      await q2.drain()
      expectEachOnce(t.delivered, UP + N)
      expect((await recovered).items).toBe(N)
      expect(q2.metrics()).toMatchObject({ sentTotal: N, recoveredTotal: N, deadLetteredTotal: 0 })
      await waitFor(() => q2.metrics().walPendingItems === 0)
    })
  }
})

describe('@vinequeue/senders/http: SIGKILL during an outage, with the WAL', () => {
  for (const outage of ['503', 'connection refused'] as const) {
    it(`${outage}: every item whose flush() resolved arrives after the restart; duplicates only from batches above the watermark at the kill`, async () => {
      const t1 = await flakyTarget()
      const dir = join(tempDir(), 'wal')
      const proc = spawn(process.execPath, [child, dir, t1.url], { stdio: ['ignore', 'pipe', 'inherit'] })
      let flushed = 0
      proc.stdout.setEncoding('utf8')
      proc.stdout.on('data', (chunk: string) => {
        for (const line of chunk.split('\n')) {
          const m = /^flushed (\d+)$/.exec(line)
          if (m) flushed = Number(m[1])
        }
      })
      const exited = new Promise<NodeJS.Signals | null>((resolve) =>
        proc.on('exit', (_code, sig) => resolve(sig)),
      )
      let killed = false
      try {
        // Up for a while (deliveries, acknowledgements, deleted segments), then down
        // while the child keeps flushing into the log, then kill -9.
        await waitFor(() => flushed >= 3000 && t1.delivered.length >= 1000, 10_000)
        if (outage === '503') t1.down = true
        else await t1.close()
        const flushedAtOutage = flushed
        await waitFor(() => flushed >= flushedAtOutage + 4000, 10_000)
        proc.kill('SIGKILL')
        killed = true
      } finally {
        if (!killed) proc.kill('SIGKILL')
      }
      expect(await exited).toBe('SIGKILL')
      const w = watermark(dir)
      const before = ids(t1.delivered)

      // A new queue on the log, the server up (a new one for 'connection refused').
      const t2 = outage === '503' ? t1 : await flakyTarget()
      t2.down = false
      const from = t2.delivered.length
      const q = queue({ url: t2.url }, { maxBatchSize: 50, wal: { dir } })
      await q.start()
      await q.drain()
      const after = ids(t2.delivered.slice(from))
      const m = q.metrics()

      // Item i has sequence number i (one producer, WAL-first): the watermark is an item id.
      expect(after.filter((i) => i < w)).toEqual([]) // nothing acknowledged comes back
      expect(m.recoveredTotal).toBe(after.length)
      for (const item of [...t1.delivered, ...t2.delivered.slice(from)]) {
        const { i, pad } = item as { i: number; pad: string }
        expect(pad).toBe('x'.repeat(i % 100)) // intact
      }
      expect(new Set(before).size).toBe(before.length) // no duplicate within a run
      expect(new Set(after).size).toBe(after.length)
      const seen = new Set([...before, ...after])
      const missing: number[] = []
      for (let i = 0; i < flushed; i++) if (!seen.has(i)) missing.push(i)
      expect({ flushed, missing: missing.slice(0, 10) }).toEqual({ flushed, missing: [] })
      // Everything from the watermark on comes back (what was not acknowledged: at-least-once).
      const afterSet = new Set(after)
      const notBack: number[] = []
      for (let i = w; i < flushed; i++) if (!afterSet.has(i)) notBack.push(i)
      expect({ w, flushed, notBack: notBack.slice(0, 10) }).toEqual({ w, flushed, notBack: [] })
      // Duplicates: delivered before the kill at or above the watermark. The watermark is the
      // oldest batch not acknowledged: batches delivered while an older one was still being sent
      // (out of order, around the moment the server went down) come back. Counted, reported.
      const beforeSet = new Set(before)
      const duplicates = after.filter((i) => beforeSet.has(i))
      console.log(
        `http SIGKILL (${outage}): flushed ${flushed}, delivered before the kill ${before.length}, ` +
          `watermark ${w}, re-delivered ${after.length}, duplicates ${duplicates.length}`,
      )
    })
  }
})

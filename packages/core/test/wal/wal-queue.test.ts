import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createQueue, InvalidConfigError } from '@vinequeue/core'
import { describe, expect, it } from 'vitest'
import { SinkDouble, waitFor } from '../helpers.ts'
import { scratch } from './outage-kit.ts'

const { walDir, keep } = scratch('vq-walq-')

describe('WAL-first queue', () => {
  it('delivers through the WAL: fsyncs counted, watermark follows, segments reclaimed', async () => {
    const sink = new SinkDouble()
    const dir = walDir()
    const q = createQueue({
      send: sink.send,
      wal: { dir, segmentBytes: 8192 },
      maxBatchSize: 100,
      flushIntervalMs: 5,
    })
    keep(q)
    await q.start()
    for (let i = 0; i < 2000; i++) q.enqueue({ i })
    await q.drain()
    expect(sink.items).toHaveLength(2000)
    const m = q.metrics()
    expect(m.fsyncsTotal).toBeGreaterThan(0)
    expect(m.fsyncsTotal).toBeLessThanOrEqual(m.batchesSentTotal) // group commit: never more than one per batch
    await waitFor(() => q.metrics().walPendingItems === 0)
  })

  it('graceful stop with the sender down: everything left is durable and re-delivered at the next start', async () => {
    const dir = walDir()
    const down = createQueue({
      send: async () => {
        throw new Error('target down')
      },
      wal: { dir },
      maxBatchSize: 10,
      flushIntervalMs: 5,
      retryInitialDelayMs: 5,
    })
    await down.start()
    // More than the in-flight slots hold: some batches are retrying, some still in the lane at stop.
    for (let i = 0; i < 120; i++) down.enqueue({ i })
    await waitFor(() => down.metrics().retryingBatches > 0)
    const report = await down.stop({ timeoutMs: 100 })
    expect(report.undeliveredCount).toBe(120)
    expect(report.walPendingItems).toBe(120)

    const sink = new SinkDouble()
    const up = createQueue({ send: sink.send, wal: { dir }, flushIntervalMs: 5 })
    keep(up)
    await up.start()
    await waitFor(() => up.metrics().recoveredTotal === 120 && up.metrics().sentTotal === 120)
    const ids = (sink.items as Array<{ i: number }>).map((x) => x.i).sort((a, b) => a - b)
    expect(ids).toEqual([...Array(120).keys()])
    await waitFor(() => up.metrics().walPendingItems === 0)
  })

  it('validates the wal option', () => {
    expect(() => createQueue({ send: async () => undefined, wal: { dir: '' } })).toThrow(InvalidConfigError)
    expect(() =>
      createQueue({ send: async () => undefined, wal: { dir: 'x', syncMode: 'sometimes' as 'always' } }),
    ).toThrow(/wal.syncMode/)
  })

  it('a WAL that cannot be opened makes start() fail clearly', async () => {
    const file = join(walDir(), '..', 'a-file')
    writeFileSync(file, '')
    const q = createQueue({ send: async () => undefined, wal: { dir: join(file, 'wal') } })
    await expect(q.start()).rejects.toThrow(/WAL mkdir .* failed: ENOTDIR/)
  })

  it('two queues on one WAL directory: the second start() fails (cause VQ_WAL_LOCKED), the first goes on; once it stops the directory can be opened', async () => {
    const dir = walDir()
    const sink = new SinkDouble()
    const first = keep(createQueue({ send: sink.send, wal: { dir }, flushIntervalMs: 5 }))
    await first.start()
    const second = keep(createQueue({ send: sink.send, wal: { dir } }))
    const err = await second.start().catch((e: unknown) => e as Error & { cause?: { code?: string } })
    expect(err).toMatchObject({ code: 'VQ_PIPELINE_DOWN' })
    expect(err?.cause?.code).toBe('VQ_WAL_LOCKED')
    expect(err?.message).toMatch(/in use by this process/)
    for (let i = 0; i < 100; i++) first.enqueue({ i })
    await first.drain()
    expect(sink.items).toHaveLength(100)
    await first.stop()
    const third = keep(createQueue({ send: sink.send, wal: { dir } }))
    await third.start()
  })

  it('encrypted log: a key missing at restart stops re-delivery (an error names the key id) instead of losing it; with the key, everything arrives', async () => {
    const dir = walDir()
    const k1 = new Uint8Array(32).fill(1)
    const k2 = new Uint8Array(32).fill(2)
    const down = createQueue({
      send: async () => {
        throw new Error('target down')
      },
      wal: { dir, encryption: { keyId: 1, keys: { 1: k1 } } },
      maxBatchSize: 10,
      flushIntervalMs: 5,
      circuitBreaker: false,
    })
    await down.start()
    for (let i = 0; i < 50; i++) down.enqueue({ i })
    await down.flush()
    await down.stop({ timeoutMs: 50 })

    // Rotated to key 2, key 1 forgotten: the old frames cannot be read.
    const sink = new SinkDouble()
    const noKey = createQueue({
      send: sink.send,
      wal: { dir, encryption: { keyId: 2, keys: { 2: k2 } } },
      flushIntervalMs: 5,
    })
    const errors: Error[] = []
    noKey.on('error', (e) => errors.push(e))
    await noKey.start()
    noKey.enqueue({ i: 50 })
    await waitFor(() => errors.length > 0)
    expect((errors[0] as { code?: string }).code).toBe('VQ_WAL_KEY_MISSING')
    expect(errors[0]!.message).toMatch(/key id 1|keyId 1|key 1/)
    await new Promise((r) => setTimeout(r, 200))
    expect(sink.items).toEqual([]) // nothing garbled, nothing skipped
    expect(noKey.metrics().recovering).toBe(true)
    await noKey.stop({ timeoutMs: 50 })

    // With both keys: all 51 arrive.
    const withKeys = createQueue({
      send: sink.send,
      wal: { dir, encryption: { keyId: 2, keys: { 1: k1, 2: k2 } } },
      flushIntervalMs: 5,
    })
    keep(withKeys)
    await withKeys.start()
    await waitFor(() => sink.items.length >= 51)
    await withKeys.drain()
    const ids = (sink.items as Array<{ i: number }>).map((x) => x.i).sort((a, b) => a - b)
    expect(ids).toEqual([...Array(51).keys()])
    expect(withKeys.metrics().walCorruptRegions).toBe(0)
  })
})

import { afterEach, describe, expect, it } from 'vitest'
import { createMetricsBuffer, MetricSlot } from '../../src/metrics/layout.ts'
import { MetricsWriter } from '../../src/metrics/writer.ts'
import { type Flight, newFlight } from '../../src/pipeline/flight.ts'
import { InFlightWindow } from '../../src/pipeline/in-flight-window.ts'
import { openLog } from '../../src/pipeline/log-open.ts'
import { Slab, SlabPool } from '../../src/pipeline/slab-pool.ts'
import { WalBacklog } from '../../src/pipeline/wal-backlog.ts'
import { resolveOptions } from '../../src/queue/options.ts'
import type { QueueOptions, WalQueueOptions } from '../../src/queue/types.ts'
import { tempDir } from '../helpers.ts'
import { fillRaw, rawItems } from './slab-kit.ts'

// The pipeline's side of a real write-ahead log in a temp directory; the
// window is real, its "send" records what it hands over.
const cleanups: Array<() => void> = []
afterEach(() => {
  for (const c of cleanups.splice(0)) c()
})

async function open(dir: string, wal: Partial<WalQueueOptions> = {}) {
  const config = resolveOptions({ send: async () => {}, wal: { dir, ...wal } } as QueueOptions).wal!
  const metrics = new MetricsWriter(createMetricsBuffer())
  const log = await openLog(config, metrics, () => {})
  const sent: Flight[] = []
  const window = new InFlightWindow<Flight>(4, undefined, (f) => sent.push(f))
  const full: boolean[] = []
  let kicked: () => void = () => {}
  const backlog = new WalBacklog(config, log, metrics, window, {
    event: () => {},
    kick: () => kicked(),
    fullChanged: (f) => full.push(f),
  })
  /** Resolves at the next background sync's end. */
  const synced = (): Promise<void> => new Promise((resolve) => (kicked = resolve))
  const noop = (): void => {}
  const slabs = new SlabPool(4, 4096, noop, noop)
  let id = 1
  const nextId = (): number => id++
  return { backlog, metrics, window, sent, full, synced, slabs, nextId }
}

function scratch(): string {
  const { dir, cleanup } = tempDir()
  cleanups.push(cleanup)
  return dir
}

describe('WalBacklog', () => {
  it('WAL-first: a batch goes to the window only once the log has made it durable', async () => {
    const t = await open(scratch(), { syncMode: 'always' })
    expect(t.backlog.logsFirst).toBe(true)
    const slab = fillRaw(new Slab(4096), ['a', 'b'])
    const seq = t.backlog.appendSent(slab)
    expect(seq).toBe(0)
    const flight = newFlight(1, slab, seq)
    t.window.add(flight)
    t.backlog.awaitCommit(flight)
    expect(t.backlog.everyUnsynced((c) => c.walSeq !== undefined)).toBe(true)
    const synced = t.synced()
    t.backlog.commit() // (starts the background fdatasync)
    expect(t.sent).toEqual([])
    await synced
    t.backlog.commit()
    expect(t.sent).toEqual([flight])
    expect(t.window.lowestWalSeq()).toBe(0)
    t.backlog.finish([])
  })

  it('spilled batches are read back into free slabs, oldest first, with new cut ids and their sequence numbers', async () => {
    const t = await open(scratch(), { mode: 'spill', syncMode: 'always' })
    expect(t.backlog.logsFirst).toBe(false)
    expect(t.backlog.toBacklog(fillRaw(new Slab(4096), ['a', 'b']), t.nextId())).toBe(true)
    expect(t.backlog.toBacklog(fillRaw(new Slab(4096), ['c']), t.nextId())).toBe(true)
    // A flush waits for the spill marks (ids 1, 2) until the log has synced them.
    expect(t.backlog.everyUnsynced((c) => c.id > 2)).toBe(false)
    const synced = t.synced()
    t.backlog.commit()
    await synced
    t.backlog.commit()
    expect(t.backlog.everyUnsynced(() => false)).toBe(true)
    expect(t.metrics.get(MetricSlot.SPILLED)).toBe(3)
    expect(t.backlog.behind).toBe(true)
    expect(t.backlog.load(t.slabs, t.nextId)).toBe(true)
    expect(t.backlog.behind).toBe(false)
    expect(t.sent.map((f) => [f.id, f.walSeq, rawItems(f.slab.view())])).toEqual([
      [3, 0, ['a', 'b']],
      [4, 2, ['c']],
    ])
    expect(t.slabs.available).toBe(2)
    expect(t.backlog.load(t.slabs, t.nextId)).toBe(false)
    // Settled: the drain's WAL condition holds once nothing below its target is unsettled.
    expect(t.backlog.settledUpTo(3)).toBe(false)
    for (const f of [...t.sent]) t.window.settle(f)
    expect(t.backlog.settledUpTo(3)).toBe(true)
    t.backlog.finish([])
  })

  it("at maxBytes: 'block' keeps batches in memory, 'dropNewest' drops and counts them", async () => {
    for (const fullPolicy of ['block', 'dropNewest'] as const) {
      const t = await open(scratch(), { mode: 'spill', fullPolicy, segmentBytes: 4096, maxBytes: 8192 })
      const big = (): Slab => fillRaw(new Slab(4096), ['x'.repeat(1500)])
      let kept = 0
      while (t.backlog.toBacklog(big(), t.nextId()) && kept < 20 && !t.backlog.full) kept++
      expect(t.backlog.full).toBe(true)
      expect(t.full).toEqual([true])
      expect(t.metrics.get(MetricSlot.WAL_FULL)).toBe(1)
      if (fullPolicy === 'block') {
        expect(t.backlog.refusesSpill).toBe(true)
        expect(t.backlog.toBacklog(big(), t.nextId())).toBe(false)
        expect(t.metrics.get(MetricSlot.WAL_DROPPED)).toBe(0)
      } else {
        expect(t.backlog.refusesSpill).toBe(false)
        const dropped = t.metrics.get(MetricSlot.WAL_DROPPED)
        expect(t.backlog.toBacklog(big(), t.nextId())).toBe(true)
        expect(t.metrics.get(MetricSlot.WAL_DROPPED)).toBe(dropped + 1)
      }
      t.backlog.finish([])
    }
  })

  it('at stop, what the log does not hold is appended and kept for the next start', async () => {
    const dir = scratch()
    const t = await open(dir, { mode: 'spill' })
    const slab = fillRaw(new Slab(4096), ['p', 'q', 'r'])
    expect(t.backlog.finish([{ bytes: slab.view(), count: 3 }])).toBe(3)
    const again = await open(dir, { mode: 'spill' })
    expect(again.backlog.behind).toBe(true)
    expect(again.backlog.load(again.slabs, again.nextId)).toBe(true)
    expect(again.sent.map((f) => rawItems(f.slab.view()))).toEqual([['p', 'q', 'r']])
    expect(again.backlog.abandon()).toBe(3)
  })
})

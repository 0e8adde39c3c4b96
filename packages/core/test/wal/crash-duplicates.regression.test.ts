import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createQueue } from '@vinequeue/core'
import { afterEach, describe, expect, it } from 'vitest'
import { tempDir } from '../helpers.ts'
import { crashRuns, crashSeed, type CrashItem as Item, prng, readItems } from './crash-knobs.ts'

// Duplicates after kill -9 are bounded by what was in flight: a restart
// re-delivers, of the items delivered before the kill, at most the batches
// that were sent and not yet acknowledged in the log — maxInFlightBatches ×
// maxBatchSize items — not everything delivered since the watermark was last
// written. (The watermark used to be written at most every 100 ms: a kill
// brought back up to 100 ms of traffic, 24.5% of all items over 30 kills
// with `flush()` every 500 items.)
const child = fileURLToPath(new URL('../fixtures/wal-crash-child.mjs', import.meta.url))
/** The child's queue: a small in-flight window, so that what can be in flight at a kill is small and known. */
const childConfig = (syncMode: string): string =>
  JSON.stringify({
    syncMode,
    segmentBytes: 64 * 1024,
    maxBatchSize: 20,
    maxInFlightBatches: 2,
    sendDelayMs: 2,
    perFlush: 500,
    padModulo: 50,
  })
const ITERATIONS = crashRuns(8)
const SEED = crashSeed()
/** The child's maxInFlightBatches × maxBatchSize. */
const IN_FLIGHT_BOUND = 2 * 20

/** Runs the child until `flushed` reaches `minFlushed`, then `killAfterMs` later SIGKILLs it. */
async function crashOnce(
  dir: string,
  syncMode: string,
  killAfterMs: number,
  minFlushed: number,
): Promise<number> {
  const proc = spawn(process.execPath, [child, dir, childConfig(syncMode)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let flushed = 0
  let armed = false
  proc.stdout.setEncoding('utf8')
  proc.stdout.on('data', (chunk: string) => {
    for (const line of chunk.split('\n')) {
      const m = /^flushed (\d+)$/.exec(line)
      if (m) flushed = Number(m[1])
      if (!armed && flushed >= minFlushed) {
        armed = true
        setTimeout(() => proc.kill('SIGKILL'), killAfterMs)
      }
    }
  })
  const signal = await new Promise<NodeJS.Signals | null>((resolve) =>
    proc.on('exit', (_c, sig) => resolve(sig)),
  )
  expect(signal).toBe('SIGKILL')
  return flushed
}

/** A fresh queue on the log re-delivers what it holds; returns those items. */
async function redeliver(walDir: string): Promise<Item[]> {
  const after: Item[] = []
  const q = createQueue({
    send: (batch) => {
      after.push(...(batch.items() as Item[]))
    },
    wal: { dir: walDir },
    flushIntervalMs: 5,
  })
  await q.start()
  await q.drain()
  const report = await q.stop()
  expect(report.walPendingItems).toBe(0)
  return after
}

const cleanups: Array<() => void> = []
afterEach(() => {
  for (const c of cleanups.splice(0)) c()
})

describe('duplicates after kill -9 (WAL-first, maxInFlightBatches 2 × maxBatchSize 20)', () => {
  for (const syncMode of ['always', 'periodic', 'none']) {
    const runs = syncMode === 'always' ? ITERATIONS : Math.max(1, Math.ceil(ITERATIONS / 2))
    it(`syncMode '${syncMode}': a restart re-delivers at most ${IN_FLIGHT_BOUND} items that were delivered before the kill (${runs} kills)`, {
      timeout: 60_000 + runs * 10_000,
    }, async () => {
      const rand = prng(SEED)
      const perKill: number[] = []
      let delivered = 0
      for (let run = 0; run < runs; run++) {
        const { dir, cleanup } = tempDir()
        cleanups.push(cleanup)
        const killAfterMs = rand.int(0, 300)
        // Killed once traffic flows (a few flushes in), at a random moment after.
        const flushed = await crashOnce(dir, syncMode, killAfterMs, 1000)
        const before = readItems(join(dir, 'delivered.ndjson'))
        const after = await redeliver(join(dir, 'wal'))
        const deliveredBefore = new Set<number>()
        for (const item of before) {
          expect(item.pad).toBe('x'.repeat(item.n % 50))
          // No duplicate within a run (nothing is retried here).
          expect(deliveredBefore.has(item.n)).toBe(false)
          deliveredBefore.add(item.n)
        }
        const again = after.filter((item) => deliveredBefore.has(item.n)).length
        perKill.push(again)
        delivered += before.length
        // Nothing whose flush() resolved is lost.
        const seen = new Set([...deliveredBefore, ...after.map((x) => x.n)])
        const missing: number[] = []
        for (let n = 0; n < flushed; n++) if (!seen.has(n)) missing.push(n)
        expect({ seed: SEED, run, killAfterMs, missing: missing.slice(0, 10) }).toEqual({
          seed: SEED,
          run,
          killAfterMs,
          missing: [],
        })
        expect({ seed: SEED, run, killAfterMs, delivered: before.length, again }).toEqual({
          seed: SEED,
          run,
          killAfterMs,
          delivered: before.length,
          again: Math.min(again, IN_FLIGHT_BOUND),
        })
        cleanup()
      }
      console.log(
        `duplicates after kill -9 (syncMode ${syncMode}): per kill ${perKill.join(', ')} (bound ${IN_FLIGHT_BOUND}); ${perKill.reduce((a, b) => a + b, 0)} of ${delivered} delivered items`,
      )
    })
  }
})

import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createQueue } from '@vinequeue/core'
import { describe, expect, it } from 'vitest'
import { crashRuns, crashSeed, type CrashItem as Item, prng, readItems } from './crash-knobs.ts'

// kill -9 at random moments: every item whose flush() resolved (syncMode
// 'always') was either delivered before the crash or comes back from the WAL
// at the next start, intact.
const child = fileURLToPath(new URL('../fixtures/wal-crash-child.mjs', import.meta.url))
// VINEQUEUE_CRASH_RUNS=500 for a long run, VINEQUEUE_CRASH_SEED to replay one (crash-knobs.ts).
const ITERATIONS = crashRuns(25)
const SEED = crashSeed()

async function crashOnce(dir: string, killAfterMs: number): Promise<number> {
  const proc = spawn(process.execPath, [child, dir], { stdio: ['ignore', 'pipe', 'inherit'] })
  let flushed = 0
  let started = false
  proc.stdout.setEncoding('utf8')
  proc.stdout.on('data', (chunk: string) => {
    for (const line of chunk.split('\n')) {
      if (line === 'started') {
        started = true
        setTimeout(() => proc.kill('SIGKILL'), killAfterMs)
      }
      const m = /^flushed (\d+)$/.exec(line)
      if (m) flushed = Number(m[1])
    }
  })
  await new Promise<void>((resolve) => proc.on('exit', () => resolve()))
  expect(started).toBe(true)
  return flushed
}

describe('WAL-first queue under kill -9', () => {
  it(`re-delivers every flushed item after SIGKILL at a random moment (${ITERATIONS} runs)`, {
    timeout: 60_000 + ITERATIONS * 4000,
  }, async () => {
    const rand = prng(SEED)
    for (let run = 0; run < ITERATIONS; run++) {
      const dir = mkdtempSync(join(tmpdir(), 'vq-crash-'))
      try {
        const killAfterMs = rand.int(50, 449)
        const flushed = await crashOnce(dir, killAfterMs)
        const before = readItems(join(dir, 'delivered.ndjson'))
        // A fresh queue on the same WAL re-delivers what was not acknowledged.
        const after: Item[] = []
        const q = createQueue({
          send: (batch) => {
            after.push(...(batch.items() as Item[]))
          },
          wal: { dir: join(dir, 'wal') },
          flushIntervalMs: 5,
        })
        await q.start()
        const deadline = Date.now() + 20_000
        while (Date.now() < deadline) {
          const m = q.metrics()
          if (
            m.walPendingItems === 0 ||
            (m.inFlightBatches === 0 && m.recoveredTotal > 0 && m.memoryQueueSize === 0)
          )
            break
          await new Promise((r) => setTimeout(r, 10))
        }
        await q.stop()
        const seen = new Set<number>()
        for (const item of [...before, ...after]) {
          expect(item.pad).toBe('x'.repeat(item.n % 200)) // never a corrupted item
          seen.add(item.n)
        }
        const missing: number[] = []
        for (let n = 0; n < flushed; n++) if (!seen.has(n)) missing.push(n)
        expect({ seed: SEED, run, killAfterMs, flushed, missing: missing.slice(0, 10) }).toEqual({
          seed: SEED,
          run,
          killAfterMs,
          flushed,
          missing: [],
        })
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    }
  })
})

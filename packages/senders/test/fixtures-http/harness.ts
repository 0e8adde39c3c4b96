// Shared by the HTTP sender test files: real targets and queues that load the
// sender by package name, cleaned up after each test (queues stopped, targets
// closed with no server-side errors, scratch folders removed, in that order).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createQueue, type Queue, type QueueOptions } from '@vinequeue/core'
import type { HttpSenderOptions } from '@vinequeue/senders/http'
import { afterEach, expect } from 'vitest'
import { type Handler, startTarget, type Target } from './target.ts'

// The sender is loaded BY PACKAGE NAME into the queue's sender pool, from
// dist: build first (`npx tsc -p packages/senders/tsconfig.build.json`).
export const SENDER = '@vinequeue/senders/http'

export interface HttpHarness {
  target(handler?: Handler, options?: { https?: boolean }): Promise<Target>
  /** A queue sending to `options.url` from one sender thread (2 sends at once), with `defaults` and `extra` over that. */
  queue(options: HttpSenderOptions, extra?: Partial<QueueOptions>): Queue
  /** Stops `q` after the test. */
  track(q: Queue): Queue
  tempDir(): string
}

export function httpHarness(defaults: Partial<QueueOptions>): HttpHarness {
  const queues: Queue[] = []
  const targets: Target[] = []
  const dirs: string[] = []
  afterEach(async () => {
    await Promise.all(queues.splice(0).map((q) => q.stop({ timeoutMs: 2000 })))
    for (const t of targets.splice(0)) {
      await t.close()
      expect(t.errors).toEqual([])
    }
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })
  const track = (q: Queue): Queue => {
    queues.push(q)
    return q
  }
  return {
    async target(handler, options) {
      const t = await startTarget(handler, options)
      targets.push(t)
      return t
    },
    queue(options, extra = {}) {
      return track(
        createQueue({
          sender: { module: SENDER, options },
          senderThreads: 1,
          senderConcurrency: 2,
          maxBatchSize: 100,
          ...defaults,
          ...extra,
        }),
      )
    },
    track,
    tempDir() {
      const d = mkdtempSync(join(tmpdir(), 'vq-http-'))
      dirs.push(d)
      return d
    },
  }
}

export const ids = (items: unknown[]): number[] => items.map((item) => (item as { i: number }).i)

/** Every id in [0, n) exactly once, and nothing else. */
export function expectEachOnce(items: unknown[], n: number): void {
  const seen = ids(items)
  const dupes = seen.length - new Set(seen).size
  expect({ count: seen.length, dupes }).toEqual({ count: n, dupes: 0 })
  expect(seen.every((id) => Number.isInteger(id) && id >= 0 && id < n)).toBe(true)
}

import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createQueue, type Queue } from '@vinequeue/core'
import { afterEach, describe, expect, it } from 'vitest'

const faultFs = new URL('../fixtures/fault-fs.mjs', import.meta.url)

const dirs: string[] = []
const queues: Queue[] = []
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.stop({ timeoutMs: 500 })))
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  delete process.env.VQ_FAULT_DIR
})

/** Resolves to 'pending' if `p` has not settled within `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | 'pending'> {
  return Promise.race([p, new Promise<'pending'>((r) => setTimeout(() => r('pending'), ms))])
}

describe('WAL file-system faults through the queue', () => {
  for (const [fault, code] of [
    ['enospc', 'ENOSPC'],
    ['eio-sync', 'EIO'],
  ] as const) {
    it(`${code} (${fault === 'enospc' ? 'append' : 'fdatasync'}): a clear error, nothing sent or confirmed before it is durable, the queue recovers when the file system does`, async () => {
      const root = mkdtempSync(join(tmpdir(), 'vq-fault-'))
      dirs.push(root)
      process.env.VQ_FAULT_DIR = root
      const seen = new Map<number, number>()
      const q = createQueue({
        send: async (batch) => {
          for (const { i } of batch.items() as Array<{ i: number }>) seen.set(i, (seen.get(i) ?? 0) + 1)
        },
        wal: { dir: join(root, 'wal'), fs: faultFs },
        maxBatchSize: 100,
        flushIntervalMs: 5,
      })
      queues.push(q)
      const errors: Error[] = []
      q.on('error', (e) => errors.push(e))
      await q.start()
      for (let i = 0; i < 1000; i++) q.enqueue({ i })
      await q.drain()
      expect(seen.size).toBe(1000)

      writeFileSync(join(root, fault), '')
      for (let i = 1000; i < 2000; i++) q.enqueue({ i })
      const flushed = q.flush()
      expect(await within(flushed, 500)).toBe('pending') // not durable: not confirmed
      expect(seen.size).toBe(1000) // WAL-first: nothing sent before it is durable
      expect(errors.length).toBeGreaterThanOrEqual(1)
      expect(errors[0]!.message).toContain(code)
      expect((errors[0] as { code?: string }).code).toBe('VQ_WAL_IO')
      expect(q.health().status).not.toBe('down')

      unlinkSync(join(root, fault))
      await flushed
      await q.drain()
      expect(seen.size).toBe(2000)
      for (const n of seen.values()) expect(n).toBe(1)
    })
  }
})

import { createQueue, type Queue } from '@vinequeue/core'
import { afterEach, describe, expect, it } from 'vitest'
import { recordingSender, tempDir } from '../helpers.ts'

const queues: Queue[] = []
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.stop({ timeoutMs: 1000 })))
})

describe('an idle queue', () => {
  it('burns no CPU: the pipeline and the sender threads sleep until there is work', async () => {
    const { dir, cleanup } = tempDir()
    try {
      const q = createQueue({
        sender: { module: recordingSender, options: { file: `${dir}/out.ndjson` } },
        flushIntervalMs: 5,
      })
      queues.push(q)
      await q.start()
      for (let i = 0; i < 1000; i++) q.enqueue({ i })
      await q.drain()
      // process.cpuUsage() counts every thread of the process.
      const before = process.cpuUsage()
      await new Promise((r) => setTimeout(r, 1000))
      const used = process.cpuUsage(before)
      const cpuMs = (used.user + used.system) / 1000
      // A spinning thread would use ~1000 ms here; the bound leaves room for the
      // test runner's own timers on a noisy machine.
      expect(cpuMs).toBeLessThan(150)
      // And it still wakes up for new work.
      q.enqueue({ i: 1000 })
      await q.drain()
      expect(q.metrics().sentTotal).toBe(1001)
    } finally {
      cleanup()
    }
  })
})

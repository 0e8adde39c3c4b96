import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createQueue, type Queue } from '@vinequeue/core'
import { afterEach, describe, expect, it } from 'vitest'
import { tempDir, waitFor } from '../helpers.ts'

// The sender threads are started by the queue's thread: the first beside the
// pipeline thread (start() waits for its sender), the others once start()
// has resolved; all of them are closed and terminated by stop().
const cleanups: Array<() => void> = []
const queues: Queue[] = []
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.stop({ timeoutMs: 2000 })))
  for (const c of cleanups.splice(0)) c()
})

const fixture = (name: string): string => new URL(`../fixtures/${name}`, import.meta.url).href

describe('sender threads', () => {
  it('every one of senderThreads builds its sender, and stop() closes each', async () => {
    const { dir, cleanup } = tempDir()
    cleanups.push(cleanup)
    const file = join(dir, 'log')
    const q = createQueue({
      sender: { module: fixture('closing-sender.mjs'), options: { file } },
      senderThreads: 3,
    })
    queues.push(q)
    await q.start()
    const opened = (): string[] =>
      readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('opened '))
        .map((l) => l.slice(7))
    await waitFor(() => opened().length === 3)
    for (let i = 0; i < 100; i++) q.enqueue({ i })
    await q.drain()
    expect(q.metrics().sentTotal).toBe(100)
    await q.stop()
    const closed = readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('closed '))
      .map((l) => l.slice(7))
    expect(new Set(opened()).size).toBe(3)
    expect(closed.sort()).toEqual(opened().sort())
  })

  it('a sender module that ends its thread as it loads: start() rejects with SenderLoadError, not at startTimeoutMs', async () => {
    const q = createQueue({ sender: { module: fixture('exit-at-load-sender.mjs') }, startTimeoutMs: 600_000 })
    queues.push(q)
    await expect(q.start()).rejects.toMatchObject({
      name: 'SenderLoadError',
      code: 'VQ_SENDER_LOAD',
      message: expect.stringMatching(
        /exit-at-load-sender\.mjs: its thread exited before it built the sender/,
      ),
    })
  }, 20_000)
})

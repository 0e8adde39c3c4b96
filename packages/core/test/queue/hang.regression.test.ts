import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { tempDir } from '../helpers.ts'

// A sender whose factory, close() or send never settles must not hang
// start() or stop(), nor keep the process alive: each scenario runs in a
// child process that never calls process.exit and must exit on its own.
const child = new URL('../fixtures/hang-child.mjs', import.meta.url)

/** Runs a scenario; SIGKILLs the child if it has not exited within `limitMs` (it hung). */
function run(args: string[], limitMs = 40_000): Promise<{ code: number | null; steps: any[]; err: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [child.pathname, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    proc.stdout.on('data', (d) => (out += d))
    proc.stderr.on('data', (d) => (err += d))
    const timer = setTimeout(() => {
      proc.kill('SIGKILL')
      reject(new Error(`the child did not exit (it hung); output so far:\n${out}\n${err}`))
    }, limitMs)
    proc.on('exit', (code) => {
      clearTimeout(timer)
      const steps = out
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line))
      resolve({ code, steps, err })
    })
  })
}

describe('a sender that never settles hangs nothing (regression)', () => {
  it('a factory that never settles: start() rejects with VQ_START_TIMEOUT, stop() settles, the process exits', async () => {
    const { code, steps, err } = await run(['factory'])
    expect(err).toBe('')
    expect(code).toBe(0)
    expect(steps[0]).toMatchObject({
      step: 'start',
      ok: false,
      name: 'StartTimeoutError',
      code: 'VQ_START_TIMEOUT',
    })
    expect(steps[0].message).toMatch(/300 ms/)
    // The item enqueued before start() comes back in the report.
    expect(steps[1]).toEqual({ step: 'stop', undelivered: 1, health: 'down' })
  })

  it('with a WAL: the log is released, another queue opens its directory', async () => {
    const { dir, cleanup } = tempDir()
    try {
      const { code, steps, err } = await run(['factory', join(dir, 'wal')])
      expect(err).toBe('')
      expect(code).toBe(0)
      expect(steps[0]).toMatchObject({ step: 'start', ok: false, code: 'VQ_START_TIMEOUT' })
      expect(steps[2]).toEqual({ step: 'second', items: [{ i: 2 }] })
    } finally {
      cleanup()
    }
  })

  it('stop() while start() waits for the factory: both settle, the process exits', async () => {
    const { code, steps, err } = await run(['stop-while-starting'])
    expect(err).toBe('')
    expect(code).toBe(0)
    expect(steps).toEqual([
      { step: 'stop', undelivered: 0 },
      { step: 'start', ok: false, code: 'VQ_QUEUE_CLOSED' },
    ])
  })

  it('a sender whose close() never settles: stop() settles (an error event names it), the process exits', async () => {
    const { code, steps, err } = await run(['close'])
    expect(err).toBe('')
    expect(code).toBe(0)
    expect(steps).toEqual([
      { step: 'start', ok: true },
      { step: 'error', message: expect.stringMatching(/1 of 1 sender threads did not close their sender/) },
      { step: 'stop', undelivered: 0, timedOut: false },
    ])
  })

  it('a send that never settles: stop() settles and reports the items, the process exits', async () => {
    const { code, steps, err } = await run(['send'])
    expect(err).toBe('')
    expect(code).toBe(0)
    expect(steps).toEqual([
      { step: 'start', ok: true },
      { step: 'stop', undelivered: 10, timedOut: true },
    ])
  })
})

import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

// Regression: piscina require()s its task file first. When that file was an
// ES module (Node's require(esm)), a sender thread terminated while the module
// was being linked aborted the whole process (SIGABRT, `Assertion failed:
// facade->InstantiateModule(...)` in ModuleWrap::CreateRequiredModuleFacade):
// seen when start() failed on a sender's bad options while another sender
// thread was still loading. The queue now starts its sender threads itself,
// on their ES module entry, with no pool that require()s it; whatever starts
// them, `--trace-require-module=all` makes Node report every require() of an
// ES module, in every thread: there must be none of ours. (The abort itself is a race, about one process in ten under load;
// this checks its precondition on every run.)
const root = fileURLToPath(new URL('../../../../', import.meta.url))
const sender = new URL('../fixtures/recording-sender.mjs', import.meta.url).href
const script = `
import { createQueue } from '@vinequeue/core'
const q = createQueue({ sender: { module: ${JSON.stringify(sender)}, options: { file: '/dev/null' } }, senderThreads: 2 })
await q.start()
q.enqueue({ n: 1 })
await q.drain()
console.log('sent', q.metrics().sentTotal)
await q.stop()
`

describe('sender threads load without require(esm)', () => {
  it('no ES module of the queue is loaded with require() in any thread', async () => {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['--trace-require-module=all', '--input-type=module', '-e', script],
      { cwd: root, timeout: 30_000 },
    )
    expect(stdout.trim()).toBe('sent 1')
    expect(stderr).not.toMatch(/loading ES Module .* using require\(\)/)
  })
})

import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

// Regression: the queue's threads must start whatever Node flags the
// application runs with — `--input-type` (rejected by workers started from a
// file) and process-wide flags (rejected when execArgv is passed explicitly).
const root = fileURLToPath(new URL('../../../../', import.meta.url))
const script = `
import { createQueue } from '@vinequeue/core'
const q = createQueue({ send() {} })
await q.start()
q.enqueue(1)
await q.drain()
console.log('sent', q.metrics().sentTotal)
await q.stop()
`

describe('Node flags of the host process', () => {
  it.each([
    [['--input-type=module']],
    [['--expose-gc', '--input-type=module']],
    [['--max-old-space-size=2048', '--input-type=module']],
  ])('starts under %j', async (flags) => {
    const { stdout } = await promisify(execFile)(process.execPath, [...flags, '-e', script], {
      cwd: root,
      timeout: 30_000,
    })
    expect(stdout.trim()).toBe('sent 1')
  })
})

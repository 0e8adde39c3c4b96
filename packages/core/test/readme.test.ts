import { execFile } from 'node:child_process'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

// The root README's quick start must run as shown.
const root = fileURLToPath(new URL('../../../', import.meta.url))

describe('README', () => {
  it('the quick start runs as shown', async () => {
    const readme = readFileSync(`${root}README.md`, 'utf8')
    const section = readme.slice(readme.indexOf('## Quick start'))
    const code = /```js\n([\s\S]*?)```/.exec(section)?.[1]
    expect(code).toContain("from '@vinequeue/core'")
    const file = `${root}.readme-quick-start-${process.pid}.mjs`
    writeFileSync(file, code!)
    try {
      const { stdout } = await promisify(execFile)(process.execPath, [file], { cwd: root, timeout: 30_000 })
      expect(stdout).toMatch(/batch of \d+, first: \{ id: 0,/)
      expect(stdout).toMatch(/sentTotal: 10000/)
      expect(stdout).toMatch(/batchesSentTotal: \d+/)
      expect(stdout).toMatch(/undelivered: 0/)
    } finally {
      rmSync(file, { force: true })
    }
  })
})

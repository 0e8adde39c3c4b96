import { execFile } from 'node:child_process'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

// The root README's quick start and the core README's `await using` example must run as shown.
const root = fileURLToPath(new URL('../../../', import.meta.url))

/** Runs `code` as an ES module file in the repository root with this Node; its stdout. */
async function runModule(code: string, tag: string): Promise<string> {
  const file = `${root}.readme-quick-start-${tag}-${process.pid}.mjs`
  writeFileSync(file, code)
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [file], { cwd: root, timeout: 30_000 })
    return stdout
  } finally {
    rmSync(file, { force: true })
  }
}

describe('README', () => {
  it('the quick start runs as shown', async () => {
    const readme = readFileSync(`${root}README.md`, 'utf8')
    const section = readme.slice(readme.indexOf('## Quick start'))
    const code = /```js\n([\s\S]*?)```/.exec(section)?.[1]
    expect(code).toContain("from '@vinequeue/core'")
    const stdout = await runModule(code!, 'root')
    expect(stdout).toMatch(/batch of \d+, first: \{ id: 0,/)
    expect(stdout).toMatch(/sentTotal: 10000/)
    expect(stdout).toMatch(/batchesSentTotal: \d+/)
    expect(stdout).toMatch(/undelivered: 0/)
  })

  it("the core README's `await using` example stops the queue at scope exit (as it is on Node 24, through tsc on Node 22)", async () => {
    const readme = readFileSync(`${root}packages/core/README.md`, 'utf8')
    const code = /```js\n(\/\/ await-using\.mjs[\s\S]*?)```/.exec(readme)?.[1]
    expect(code).toContain('await using queue = createQueue(')
    const major = Number(process.versions.node.split('.')[0])
    // Node 22's V8 (12.4) has no `using` syntax; TypeScript lowers it to Symbol.asyncDispose calls.
    const runnable =
      major >= 24
        ? code!
        : ts.transpileModule(code!, {
            compilerOptions: { target: ts.ScriptTarget.ES2023, module: ts.ModuleKind.ESNext },
          }).outputText
    expect(await runModule(runnable, 'await-using')).toBe('delivered 1\nstopped\n')
  })
})

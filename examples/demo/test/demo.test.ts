import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

// The compiled demo, as `pnpm demo` runs it (the test task builds first).
const demo = fileURLToPath(new URL('../dist/demo.js', import.meta.url))

interface Run {
  readonly child: ChildProcess
  readonly output: { stdout: string; stderr: string }
  readonly exited: Promise<number | null>
}

function start(args: string[]): Run {
  const child = spawn(process.execPath, [demo, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const output = { stdout: '', stderr: '' }
  child.stdout!.on('data', (chunk: Buffer) => (output.stdout += chunk))
  child.stderr!.on('data', (chunk: Buffer) => (output.stderr += chunk))
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  return { child, output, exited }
}

function walDir(stdout: string): string {
  const dir = /WAL (\S+) \(syncMode always\)/.exec(stdout)?.[1]
  expect(dir).toBeDefined()
  return dir!
}

/** Pids of the processes `pid` started (the sink). */
function childPids(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
}

describe('demo', () => {
  it('delivers every event exactly as sent through an outage of the sink', async () => {
    const run = start(['--events', '30000', '--producers', '1', '--outage-ms', '1000'])
    const code = await run.exited
    const { stdout, stderr } = run.output
    expect(stderr).toBe('')
    expect(code).toBe(0)
    expect(stdout).toContain('── sink down: answering 503')
    expect(stdout).toContain('── sink down: refusing connections')
    expect(stdout).toContain('── sink back up')
    expect(stdout).toMatch(/stored by the sink\s+30,000 /)
    expect(stdout).toMatch(/missing\s+0\n/)
    expect(stdout).toMatch(/corrupted\s+0 /)
    expect(stdout).toMatch(/dead letters\s+0\n/)
    expect(stdout).toContain('OK: all 30,000 events arrived, exactly as sent')
    expect(existsSync(walDir(stdout))).toBe(false)
    // The demo runs on the Node that started it (this test's), its sink process too.
    expect(stdout).toContain(`Node ${process.version} (sink process: Node ${process.version})`)
  })

  it('fails, and cleans up, when the sink process dies', async () => {
    const run = start(['--events', '2000000', '--outage-ms', '0'])
    while (!run.output.stdout.includes('enqueued')) await new Promise((r) => setTimeout(r, 50))
    const [sink] = childPids(run.child.pid!)
    expect(sink).toBeDefined()
    process.kill(sink!, 'SIGKILL')
    expect(await run.exited).toBe(1)
    expect(run.output.stderr).toContain('sink process exited (SIGKILL)')
    expect(existsSync(walDir(run.output.stdout))).toBe(false)
  })

  it('rejects a bad flag with the usage', async () => {
    const run = start(['--events', '0'])
    expect(await run.exited).toBe(2)
    expect(run.output.stderr).toContain('invalid: --events 0')
    expect(run.output.stderr).toContain('usage:')
  })
})

import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'

const childScript = fileURLToPath(new URL('./fixtures/logging-child.mjs', import.meta.url))
const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

/** A real NDJSON sink: 503 while `down`, else it parses and keeps every line. */
async function sink(): Promise<{ url: string; lines: string[]; down: boolean }> {
  const state = { url: '', lines: [] as string[], down: true }
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      if (state.down) {
        res.writeHead(503).end('down')
        return
      }
      const body = Buffer.concat(chunks).toString('utf8')
      expect(body.endsWith('\n')).toBe(true)
      state.lines.push(...body.slice(0, -1).split('\n'))
      res.writeHead(200).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(() => {
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/logs`
  return state
}

function start(args: string[]): { child: ChildProcess; output: string[]; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [childScript, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  const output: string[] = []
  let partial = ''
  child.stdout!.on('data', (chunk: Buffer) => {
    const text = partial + chunk.toString('utf8')
    const lines = text.split('\n')
    partial = lines.pop()!
    output.push(...lines)
  })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    return exited.then(() => {})
  })
  return { child, output, exited }
}

async function until(what: string, fn: () => boolean, timeoutMs = 45_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

const confirmed = (output: string[]): number =>
  Math.max(0, ...output.filter((l) => l.startsWith('flushed ')).map((l) => Number(l.slice(8))))

/** Every line is the pino line as logged; every seq below `n` is there. */
function checkLines(lines: string[], n: number, run: string): void {
  const seen = new Set<number>()
  for (const line of lines) {
    const entry = JSON.parse(line) as {
      level: number
      msg: string
      seq: number
      pad: string
      run: string
      time: number
    }
    if (entry.run !== run) continue
    expect(entry.level).toBe(30)
    expect(entry.msg).toBe(`line ${entry.seq}`)
    expect(entry.pad).toBe('é'.repeat(entry.seq % 50))
    expect(typeof entry.time).toBe('number')
    seen.add(entry.seq)
  }
  const missing: number[] = []
  for (let seq = 0; seq < n; seq++) if (!seen.has(seq)) missing.push(seq)
  expect(missing, `${missing.length} confirmed lines missing`).toEqual([])
}

describe('@vinequeue/pino with the WAL, across a crash', () => {
  it('a line whose logger.flush() called back survives kill -9 and reaches the sink after a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vq-pino-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const target = await sink()
    // The sink is down: nothing is delivered before the kill, so every
    // confirmed line must come back from the WAL.
    const first = start([dir, target.url, 'kill'])
    await until('2000 confirmed lines', () => confirmed(first.output) >= 2000)
    first.child.kill('SIGKILL')
    await first.exited
    const n = confirmed(first.output)
    expect(target.lines).toEqual([])

    target.down = false
    const second = start([dir, target.url, 'recover'])
    await until('the restart', () => second.output.includes('started'))
    await until(`${n} lines at the sink`, () => new Set(target.lines).size >= n)
    await until('every confirmed line', () => {
      try {
        checkLines(target.lines, n, 'kill')
        return true
      } catch {
        return false
      }
    }).catch(() => {})
    checkLines(target.lines, n, 'kill')
  })

  it('process.exit() right after `await logger.flush()` loses no line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vq-pino-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const target = await sink()
    const first = start([dir, target.url, 'exit', '3000'])
    expect(await first.exited).toBe(0)
    expect(confirmed(first.output)).toBe(3000)

    target.down = false
    const second = start([dir, target.url, 'recover'])
    await until('the restart', () => second.output.includes('started'))
    await until('3000 lines at the sink', () => new Set(target.lines).size >= 3000)
    checkLines(target.lines, 3000, 'exit')
  })
})

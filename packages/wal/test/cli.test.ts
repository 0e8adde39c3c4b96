import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { WriteAheadLog } from '@vinequeue/wal'
import { afterEach, describe, expect, it } from 'vitest'

// The shipped bin (dist), run as a user would.
const bin = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url))
const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

function makeLog(): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'vq-wal-cli-')), 'wal')
  dirs.push(join(dir, '..'))
  const wal = WriteAheadLog.open(dir, { segmentBytes: 4096 })
  for (let i = 0; i < 60; i++) wal.append(new Uint8Array(100).fill(i), 5)
  wal.ack(100)
  wal.close()
  return dir
}

describe('vinequeue-wal', () => {
  it('inspect shows segments, watermark and pending items', async () => {
    const dir = makeLog()
    const { code, stdout } = await run('inspect', dir)
    expect(code).toBe(0)
    expect(stdout).toMatch(/watermark {2}100/)
    expect(stdout).toMatch(/pending {4}200 items/)
    expect(stdout).toMatch(/\.wal {2}\d+ B {2}\d+ frames/)
  })

  it('verify: exit 0 on a healthy log, 1 with offsets on a damaged one, and changes nothing', async () => {
    const dir = makeLog()
    expect((await run('verify', dir)).stdout).toMatch(/^OK \d+ segment\(s\), \d+ frame\(s\), every CRC valid/)
    const [first] = readdirSync(dir)
      .filter((n) => n.endsWith('.wal'))
      .sort()
    const path = join(dir, first!)
    const bytes = Buffer.from(readFileSync(path))
    bytes[200]! ^= 0xff
    writeFileSync(path, bytes)
    const { code, stdout } = await run('verify', dir)
    expect(code).toBe(1)
    expect(stdout).toMatch(new RegExp(`DAMAGED ${first} bytes \\d+–\\d+`))
    expect(readFileSync(path)).toEqual(bytes)
  })

  it('usage errors exit 2', async () => {
    expect((await run()).code).toBe(2)
    expect((await run('inspect', '/no/such/dir')).code).toBe(2)
  })
})

import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { scanSegment, WriteAheadLog } from '@vinequeue/wal'
import { Packr } from 'msgpackr'
import { afterEach, describe, expect, it } from 'vitest'

// vinequeue-wal on a damaged or gapped log: a missing middle segment used to
// pass `verify` (exit 0) while its items were gone without a word; what the
// log moved to quarantine must be visible (inspect, verify) and readable
// (dump --quarantine).

const bin = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url))
const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function run(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

function tempDir(): string {
  const root = mkdtempSync(join(tmpdir(), 'vq-wal-cli-dmg-'))
  dirs.push(root)
  return join(root, 'wal')
}
const name = (seq: number): string => `${String(seq).padStart(20, '0')}.wal`

/** One single-item record per item (core's batch layout: u32 length, msgpack, padding to 4). */
const packr = new Packr({ useRecords: false, moreTypes: false })
function batch(items: readonly unknown[]): Uint8Array {
  const parts = items.map((item) => {
    const payload = packr.pack(item)
    const record = Buffer.alloc((4 + payload.byteLength + 3) & ~3)
    record.writeUInt32LE(payload.byteLength, 0)
    record.set(payload, 4)
    return record
  })
  return Buffer.concat(parts)
}

/** 12 frames of 10 items ({ n }), 4 frames per segment: segments 0, 40, 80. */
function makeLog(dir: string, options: Parameters<typeof WriteAheadLog.open>[1] = {}): void {
  const wal = WriteAheadLog.open(dir, { segmentBytes: 4096, ...options })
  for (let f = 0; f < 12; f++) {
    const items = Array.from({ length: 10 }, (_, k) => ({ n: f * 10 + k, pad: 'x'.repeat(80) }))
    wal.append(batch(items), items.length)
  }
  wal.close()
}

describe('vinequeue-wal on a gapped log', () => {
  it('a missing middle segment: verify exits 1 naming the gap, inspect shows it, dump reports it', async () => {
    const dir = tempDir()
    makeLog(dir)
    expect((await run(['verify', dir])).code).toBe(0)
    unlinkSync(join(dir, name(40)))
    const verify = await run(['verify', dir])
    expect(verify.code).toBe(1)
    expect(verify.stdout).toContain(`GAP items 40–79 (40) are in no frame, before ${name(80)}`)
    const inspect = await run(['inspect', dir])
    expect(inspect.code).toBe(0)
    expect(inspect.stdout).toMatch(/gaps {7}1 \(40 items missing\)/)
    const dump = await run(['dump', dir])
    expect(dump.code).toBe(1)
    expect(dump.stderr).toContain('items 40–79 (40) are in no frame')
    expect(dump.stdout.trim().split('\n')).toHaveLength(80)
  })

  it('a stray segment after the last one: a gap at the end; one named past 2^53 is listed as stray', async () => {
    const dir = tempDir()
    makeLog(dir)
    writeFileSync(join(dir, name(5000)), '')
    writeFileSync(join(dir, '99999999999999999999.wal'), 'x')
    const verify = await run(['verify', dir])
    expect(verify.code).toBe(1)
    expect(verify.stdout).toContain('GAP items 120–4999 (4880) are in no frame, at the end of the log')
    expect(verify.stdout).toContain('STRAY 99999999999999999999.wal')
  })
})

describe('vinequeue-wal and the quarantine', () => {
  it('damage the log moved aside is listed by inspect and verify, and dump --quarantine reads its frames', async () => {
    const dir = tempDir()
    const key = randomBytes(32)
    const encryption = { keyId: 3, keys: { 3: key } }
    makeLog(dir, { encryption })
    // A CRC-damaged frame in the first segment, and a frame the queue would
    // quarantine for failing authentication among good ones (here: moved
    // aside through the reader, as the queue does).
    const path = join(dir, name(0))
    const bytes = Buffer.from(readFileSync(path))
    const victim = scanSegment(bytes).frames[2]!
    bytes[victim.offset + 50]! ^= 0xff
    writeFileSync(path, bytes)
    const wal = WriteAheadLog.open(dir, { segmentBytes: 4096, encryption })
    const reader = wal.reader()
    expect(reader.next()!.firstSeq).toBe(0)
    expect(reader.quarantine()).toBe(10) // items 10-19
    for (let f = reader.next(); f; f = reader.next()) {}
    wal.ack(reader.position) // everything delivered: segments deleted, their damage kept
    reader.close()
    wal.close()
    const corrupt = `${name(0)}@${victim.offset}-${victim.end}.corrupt`
    const verify = await run(['verify', dir])
    expect(verify.code).toBe(1)
    expect(verify.stdout).toContain(`QUARANTINED quarantine/${corrupt}`)
    expect(verify.stdout).toMatch(/QUARANTINED quarantine\/0{20}\.wal@\d+-\d+\.auth/)
    const inspect = await run(['inspect', dir])
    expect(inspect.stdout).toMatch(/quarantine 2 file\(s\)/)
    expect(inspect.stdout).toContain(`${corrupt}  ${victim.end - victim.offset} B  corrupt`)
    const plain = await run(['dump', dir])
    expect(plain.code).toBe(1)
    expect(plain.stderr).toContain('quarantine/ holds 2 file(s)')
    const keyFile = join(dir, '..', 'keys')
    writeFileSync(keyFile, `3:${key.toString('base64')}\n`, { mode: 0o600 })
    const q = await run(['dump', dir, '--quarantine', '--all', '--key-file', keyFile])
    const lines = q.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(lines.map((l) => l.seq)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19])
    expect(lines[0]).toMatchObject({ item: { n: 10 }, quarantined: expect.stringMatching(/\.auth$/) })
    expect(q.stderr).toContain(`quarantine/${corrupt} bytes 0–${victim.end - victim.offset}`)
    expect(q.code).toBe(1)
  })
})

import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { FrameFlag, scanSegment, type WalOptions, WriteAheadLog } from '@vinequeue/wal'
import { Packr } from 'msgpackr'
import { afterEach, describe, expect, it } from 'vitest'

// The shipped bin (dist), run as a user would.
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
    execFile(
      process.execPath,
      [bin, ...args],
      { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
      },
    )
  })
}

function tempDir(): string {
  const root = mkdtempSync(join(tmpdir(), 'vq-wal-cli-'))
  dirs.push(root)
  return root
}

function segmentFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.wal'))
    .sort()
}

function makeLog(): string {
  const dir = join(tempDir(), 'wal')
  const wal = WriteAheadLog.open(dir, { segmentBytes: 4096 })
  for (let i = 0; i < 60; i++) wal.append(new Uint8Array(100).fill(i), 5)
  wal.ack(100)
  wal.close()
  return dir
}

// --- Batches as @vinequeue/core frames them (core's ring/layout.ts, batch/batch-format.ts) ---

const packr = new Packr({ useRecords: false, moreTypes: false })
const GROUP_FLAG = 0x80000000
const RAW_FLAG = 0x40000000

type BatchRecord = { item: unknown } | { raw: Uint8Array } | { group: unknown[] }

/** Records back to back: u32 header (length | RAW | GROUP), payload, padding to 4 bytes. */
function encodeBatch(records: readonly BatchRecord[]): { bytes: Uint8Array; count: number } {
  const parts: Buffer[] = []
  let count = 0
  for (const r of records) {
    let payload: Uint8Array
    let flags = 0
    if ('raw' in r) {
      payload = r.raw
      flags = RAW_FLAG
      count++
    } else if ('group' in r) {
      const n = Buffer.alloc(4)
      n.writeUInt32LE(r.group.length)
      payload = Buffer.concat([n, packr.pack(r.group)])
      flags = GROUP_FLAG
      count += r.group.length
    } else {
      payload = packr.pack(r.item)
      count++
    }
    const record = Buffer.alloc((4 + payload.byteLength + 3) & ~3)
    record.writeUInt32LE((flags | payload.byteLength) >>> 0, 0)
    record.set(payload, 4)
    parts.push(record)
  }
  return { bytes: Buffer.concat(parts), count }
}

/** Item i of the test logs: varied msgpack types, compressible. */
function item(i: number): unknown {
  return { id: i, name: `user-${i % 7}`, tags: ['a', 'b'], ok: i % 2 === 0, score: i / 4, none: null }
}

/**
 * A log of 40 frames, each: 2 single items, a group of 3, a raw item (6
 * items; seq = 6 × frame + index). Returns the expected dump line of every
 * sequence number.
 */
function writeBatchLog(dir: string, options: WalOptions = {}, ack = 0): string[] {
  const expected: string[] = []
  const wal = WriteAheadLog.open(dir, { segmentBytes: 4096, ...options })
  for (let f = 0; f < 40; f++) {
    const base = f * 6
    const raw = Buffer.from(`raw bytes of frame ${f}`)
    const batch = encodeBatch([
      { item: item(base) },
      { item: item(base + 1) },
      { group: [item(base + 2), item(base + 3), item(base + 4)] },
      { raw },
    ])
    expect(wal.append(batch.bytes, batch.count)).toBe(base)
    for (let k = 0; k < 5; k++) expected.push(JSON.stringify({ seq: base + k, item: item(base + k) }))
    expected.push(JSON.stringify({ seq: base + 5, raw: raw.toString('base64') }))
  }
  wal.sync()
  if (ack > 0) wal.ack(ack)
  wal.close()
  return expected
}

function lines(stdout: string): string[] {
  return stdout.split('\n').filter((l) => l !== '')
}

describe('vinequeue-wal', () => {
  it('inspect shows segments, watermark and pending items', async () => {
    const dir = makeLog()
    const { code, stdout } = await run(['inspect', dir])
    expect(code).toBe(0)
    expect(stdout).toMatch(/watermark {2}100/)
    expect(stdout).toContain(`log id     ${readFileSync(join(dir, 'id'), 'utf8').trim()}\n`)
    expect(stdout).toMatch(/pending {4}200 items/)
    expect(stdout).toMatch(/\.wal {2}\d+ B {2}\d+ frames/)
    expect(stdout).toMatch(/lock {7}none \(not open\)/)
    expect(stdout).toMatch(/clean {6}closed cleanly at \d+\.wal \(\d+ B\): not scanned at the next open/)
  })

  it('inspect tells an open log (running owner) and a stale record apart', async () => {
    const dir = makeLog()
    const wal = WriteAheadLog.open(dir)
    wal.append(new Uint8Array([0x90]), 1)
    wal.sync()
    const open = await run(['inspect', dir])
    expect(open.stdout).toMatch(new RegExp(`lock {7}process ${process.pid} \\(running: the log is open\\)`))
    expect(open.stdout).toMatch(/clean {6}stale record/)
    wal.close()
  })

  it('verify: exit 0 on a healthy log, 1 with offsets on a damaged one, and changes nothing', async () => {
    const dir = makeLog()
    expect((await run(['verify', dir])).stdout).toMatch(
      /^OK \d+ segment\(s\), \d+ frame\(s\), every CRC valid/,
    )
    const [first] = segmentFiles(dir)
    const path = join(dir, first!)
    const bytes = Buffer.from(readFileSync(path))
    bytes[200]! ^= 0xff
    writeFileSync(path, bytes)
    const { code, stdout } = await run(['verify', dir])
    expect(code).toBe(1)
    expect(stdout).toMatch(new RegExp(`DAMAGED ${first} bytes \\d+–\\d+`))
    expect(readFileSync(path)).toEqual(bytes)
  })

  it('usage errors exit 2', async () => {
    expect((await run([])).code).toBe(2)
    expect((await run(['inspect', '/no/such/dir'])).code).toBe(2)
    const dir = makeLog()
    expect((await run(['inspect', dir, '--all'])).code).toBe(2)
    expect((await run(['dump', dir, 'extra'])).code).toBe(2)
    expect((await run(['dump', dir, '--from', '-3'])).code).toBe(2)
    expect((await run(['dump', dir, '--from', '1e3'])).code).toBe(2)
  })
})

describe('vinequeue-wal dump', () => {
  it('prints the pending items of a plain log as NDJSON, in sequence order, and changes nothing', async () => {
    const dir = join(tempDir(), 'wal')
    const expected = writeBatchLog(dir, {}, 100)
    const before = segmentFiles(dir).map((n) => readFileSync(join(dir, n)))
    const { code, stdout, stderr } = await run(['dump', dir])
    expect(stderr).toBe('')
    expect(code).toBe(0)
    expect(lines(stdout)).toEqual(expected.slice(100))
    expect(segmentFiles(dir).map((n) => readFileSync(join(dir, n)))).toEqual(before)
  })

  it('--all adds the acknowledged items still on disk; --from starts at a sequence number', async () => {
    const dir = join(tempDir(), 'wal')
    const expected = writeBatchLog(dir, {}, 100)
    // Segments holding only acknowledged items were deleted by ack: --all starts at the first frame left.
    const firstOnDisk = scanSegment(readFileSync(join(dir, segmentFiles(dir)[0]!))).frames[0]!.header.firstSeq
    expect(firstOnDisk).toBeGreaterThan(0)
    expect(firstOnDisk).toBeLessThan(100)
    expect(lines((await run(['dump', dir, '--all'])).stdout)).toEqual(expected.slice(firstOnDisk))
    // --from inside a frame starts at that item; below the watermark it needs --all.
    expect(lines((await run(['dump', dir, '--from', '203'])).stdout)).toEqual(expected.slice(203))
    expect(lines((await run(['dump', dir, '--from', '50'])).stdout)).toEqual(expected.slice(100))
    expect(lines((await run(['dump', dir, '--all', '--from', '97'])).stdout)).toEqual(expected.slice(97))
    expect(lines((await run(['dump', dir, '--from', '240'])).stdout)).toEqual([])
  })

  it('decodes msgpack types JSON has no literal for', async () => {
    const dir = join(tempDir(), 'wal')
    const wal = WriteAheadLog.open(dir)
    const batch = encodeBatch([
      { item: { bin: Buffer.from([1, 2, 3]), big: 2n ** 60n, small: 5n, date: new Date(0) } },
      { item: 'just a string' },
      { group: [] },
      { group: [1, [2, 3]] },
    ])
    wal.append(batch.bytes, batch.count)
    wal.close()
    const { code, stdout } = await run(['dump', dir])
    expect(code).toBe(0)
    expect(lines(stdout)).toEqual([
      '{"seq":0,"item":{"bin":{"$bin":"AQID"},"big":"1152921504606846976","small":5,"date":"1970-01-01T00:00:00.000Z"}}',
      '{"seq":1,"item":"just a string"}',
      '{"seq":2,"item":1}',
      '{"seq":3,"item":[2,3]}',
    ])
  })

  it('dumps a compressed log', async () => {
    const dir = join(tempDir(), 'wal')
    const expected = writeBatchLog(dir, { compression: true })
    const flags = segmentFiles(dir).flatMap((n) =>
      scanSegment(readFileSync(join(dir, n))).frames.map((f) => f.header.flags),
    )
    expect(flags.every((f) => (f & FrameFlag.COMPRESSED) !== 0)).toBe(true)
    const { code, stdout, stderr } = await run(['dump', dir])
    expect(stderr).toBe('')
    expect(code).toBe(0)
    expect(lines(stdout)).toEqual(expected)
  })

  it('dumps an encrypted (and compressed) log with keys from a file or a variable, across a key rotation', async () => {
    const root = tempDir()
    const dir = join(root, 'wal')
    const key1 = randomBytes(32)
    const key2 = randomBytes(32)
    const expected = writeBatchLog(dir, { compression: true, encryption: { keyId: 1, keys: { 1: key1 } } })
    // Rotation: new frames with key 2, the old ones still under key 1.
    const wal = WriteAheadLog.open(dir, { encryption: { keyId: 2, keys: { 1: key1, 2: key2 } } })
    const batch = encodeBatch([{ item: 'after rotation' }])
    wal.append(batch.bytes, batch.count)
    wal.close()
    expected.push('{"seq":240,"item":"after rotation"}')

    const keyFile = join(root, 'keys')
    writeFileSync(keyFile, `# dump keys\n1:${key1.toString('base64')}\n\n`, { mode: 0o600 })
    const { code, stdout, stderr } = await run(
      ['dump', dir, '--key-file', keyFile, '--key-env', 'VQ_TEST_KEY'],
      { VQ_TEST_KEY: `2:${key2.toString('base64url')}` },
    )
    expect(stderr).toBe('')
    expect(code).toBe(0)
    expect(lines(stdout)).toEqual(expected)
  })

  it('wrong or missing key: a clear error per frame, no garbage, no key material, exit 1', async () => {
    const root = tempDir()
    const dir = join(root, 'wal')
    const key = randomBytes(32)
    const wrong = randomBytes(32)
    writeBatchLog(dir, { encryption: { keyId: 1, keys: { 1: key } } })
    const secrets = [key, wrong].flatMap((k) => [
      k.toString('base64'),
      k.toString('base64url'),
      k.toString('hex'),
    ])

    const missing = await run(['dump', dir])
    expect(missing.code).toBe(1)
    expect(missing.stdout).toBe('')
    expect(missing.stderr).toMatch(
      /\.wal offset \d+: Frame at sequence 0 is encrypted with key 1, which was not given \(give it with --key-file or --key-env\)/,
    )

    const keyFile = join(root, 'wrong')
    writeFileSync(keyFile, `1:${wrong.toString('base64')}\n`, { mode: 0o600 })
    const bad = await run(['dump', dir, '--key-file', keyFile])
    expect(bad.code).toBe(1)
    expect(bad.stdout).toBe('')
    expect(bad.stderr).toMatch(/\.wal offset 0: Frame at sequence 0 failed authentication: wrong key 1/)
    expect(bad.stderr).toMatch(/40 problem\(s\); 0 item\(s\) dumped/)
    for (const s of secrets) expect(missing.stderr + bad.stderr).not.toContain(s)
  })

  it('malformed keys are usage errors that do not echo the key', async () => {
    const root = tempDir()
    const dir = join(root, 'wal')
    writeBatchLog(dir)
    const short = randomBytes(16).toString('base64')
    const keyFile = join(root, 'keys')
    writeFileSync(keyFile, `1:${short}\n`, { mode: 0o600 })
    const a = await run(['dump', dir, '--key-file', keyFile])
    expect(a.code).toBe(2)
    expect(a.stderr).toContain(`key file ${keyFile} line 1: key 1 is not 32 bytes`)
    const garbled = `${randomBytes(32).toString('base64')}`
    const b = await run(['dump', dir, '--key-env', 'VQ_TEST_KEY'], { VQ_TEST_KEY: garbled })
    expect(b.code).toBe(2)
    expect(b.stderr).toContain('environment variable VQ_TEST_KEY line 1: expected keyId:base64key')
    const c = await run(['dump', dir, '--key-env', 'VQ_TEST_UNSET'])
    expect(c.code).toBe(2)
    expect(c.stderr).toContain('VQ_TEST_UNSET is not set')
    const d = await run(['dump', dir, '--key-file', join(root, 'none')])
    expect(d.code).toBe(2)
    expect(d.stderr).toContain('ENOENT')
    for (const r of [a, b]) {
      expect(r.stdout).toBe('')
      expect(r.stderr).not.toContain(short)
      expect(r.stderr).not.toContain(garbled)
    }
  })

  it('reports a damaged frame with its segment and offset, dumps the rest, exit 1', async () => {
    const dir = join(tempDir(), 'wal')
    const expected = writeBatchLog(dir)
    const [first] = segmentFiles(dir)
    const path = join(dir, first!)
    const scan = scanSegment(readFileSync(path))
    const victim = scan.frames[1]!
    const bytes = Buffer.from(readFileSync(path))
    bytes[victim.offset + 40]! ^= 0xff // inside the payload: the payload CRC fails
    writeFileSync(path, bytes)
    const { code, stdout, stderr } = await run(['dump', dir])
    expect(code).toBe(1)
    expect(stderr).toContain(
      `${first} bytes ${victim.offset}–${victim.end} (${victim.end - victim.offset} B): no valid frame there`,
    )
    const lost = victim.header
    expect(lines(stdout)).toEqual([
      ...expected.slice(0, lost.firstSeq),
      ...expected.slice(lost.firstSeq + lost.count),
    ])
  })

  it('a frame that is not a VineQueue batch is reported, not printed', async () => {
    const dir = makeLog() // frames of 100 filler bytes, not batches
    const { code, stdout, stderr } = await run(['dump', dir])
    expect(code).toBe(1)
    expect(stdout).toBe('')
    expect(stderr).toMatch(/\.wal offset \d+: frame at sequence 100 is not a VineQueue batch: /)
  })
})

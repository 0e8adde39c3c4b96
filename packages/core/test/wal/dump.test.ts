/**
 * `vinequeue-wal dump` reads what the queue writes: the batch record format
 * has one definition (@vinequeue/wal/batch-records) that core frames with and
 * the CLI decodes with. A queue whose target is down stops with single,
 * raw and grouped items in its log; the installed bin, run as a child
 * process, prints each of them.
 */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createQueue } from '@vinequeue/core'
import { describe, expect, it } from 'vitest'
import { scratch } from './outage-kit.ts'

const { walDir } = scratch('vq-dump-')
const walPackage = fileURLToPath(new URL('../../../wal/', import.meta.url))

function dump(dir: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const pkg = JSON.parse(readFileSync(join(walPackage, 'package.json'), 'utf8')) as {
    bin: Record<string, string>
  }
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(walPackage, pkg.bin['vinequeue-wal']!), 'dump', dir],
      { encoding: 'utf8' },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    )
  })
}

describe('vinequeue-wal dump of a queue-written log', () => {
  it('prints every item the queue left in its log: single, raw and grouped, in order', async () => {
    const dir = walDir()
    const q = createQueue({
      send: async () => {
        throw new Error('target down')
      },
      wal: { dir },
      flushIntervalMs: 5,
      retryInitialDelayMs: 5,
    })
    await q.start()
    q.enqueue({ i: 0, text: 'ünïcode' })
    q.enqueueRaw(new TextEncoder().encode('raw ✓'))
    q.enqueueBatch([{ i: 1 }, { i: 2, list: [1, 2, 3] }, null])
    q.enqueue(7)
    const report = await q.stop({ timeoutMs: 200 })
    expect(report.walPendingItems).toBe(6)

    const { code, stdout, stderr } = await dump(dir)
    expect(stderr).toBe('')
    expect(code).toBe(0)
    const lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number; item?: unknown; raw?: string })
    expect(lines.map((l) => l.seq)).toEqual([0, 1, 2, 3, 4, 5].map((n) => lines[0]!.seq + n))
    expect(
      lines.map((l) => ('raw' in l ? { raw: Buffer.from(l.raw!, 'base64').toString() } : l.item)),
    ).toEqual([{ i: 0, text: 'ünïcode' }, { raw: 'raw ✓' }, { i: 1 }, { i: 2, list: [1, 2, 3] }, null, 7])
  })
})

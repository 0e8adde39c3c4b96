import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { WriteAheadLog } from '@vinequeue/wal'
import { describe, expect, it } from 'vitest'

// The bin must exist before the package is built: a package manager links
// bins at install time, and in the monorepo that comes before the build.
const root = fileURLToPath(new URL('..', import.meta.url))
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))

describe('the vinequeue-wal bin (regression: it pointed into dist/, not linked on a fresh install)', () => {
  it('is a committed file outside dist/, shipped in the package', () => {
    const target: string = pkg.bin['vinequeue-wal']
    expect(target).not.toMatch(/dist\//)
    expect(existsSync(join(root, target))).toBe(true)
    expect(pkg.files).toContain(target.replace(/^\.\//, '').split('/')[0])
  })

  it('runs the CLI', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vq-bin-'))
    try {
      const wal = WriteAheadLog.open(dir)
      wal.append(new Uint8Array([1, 2, 3]), 1)
      wal.sync()
      wal.close()
      const out = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
        const child = execFile(
          process.execPath,
          [join(root, pkg.bin['vinequeue-wal']), 'verify', dir],
          (_e, stdout) => resolve({ code: child.exitCode, stdout }),
        )
      })
      expect(out.code).toBe(0)
      expect(out.stdout).toMatch(/frames?/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

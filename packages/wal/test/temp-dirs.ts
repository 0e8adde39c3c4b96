import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach } from 'vitest'

/**
 * For one test file: a maker of fresh temporary directories (`<tmp>/<prefix>…`,
 * or the `wal` folder inside one when `sub` is 'wal', which the log creates),
 * all removed after each test.
 */
export function tempDirs(prefix: string, sub: 'wal' | '' = 'wal'): () => string {
  const dirs: string[] = []
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })
  return () => {
    const d = mkdtempSync(join(tmpdir(), prefix))
    dirs.push(d)
    return sub ? join(d, sub) : d
  }
}

/** The segment files of a log directory, in sequence order. */
export const segmentNames = (dir: string): string[] =>
  readdirSync(dir)
    .filter((n) => n.endsWith('.wal'))
    .sort()

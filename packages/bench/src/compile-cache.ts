/**
 * Question: does Node's module compile cache (`module.enableCompileCache()`,
 * an on-disk V8 code cache, Node ≥ 22.1) shorten `queue.start()`? Most of a
 * start is two worker threads booting and compiling their code (the pipeline
 * thread's and the sender pool's), so the cache is tried for them.
 *
 * `start_empty_wal_ms` as start-backlog.ts measures it (start() on an empty
 * WAL directory, syncMode always, the no-op sender module, stopped at once),
 * in child processes of this script, alternately with and without the cache
 * for the threads (`NODE_COMPILE_CACHE` in the environment the threads
 * inherit, set after this process's own modules are loaded, so only thread
 * code is cached; the same cache directory throughout, filled by a first
 * run). Each child: one warm-up start, then STARTS timed starts (median), and
 * its first start reported apart (a fresh process: what a service restart
 * sees). Standalone: `node packages/bench/dist/compile-cache.js` after a build.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createQueue } from '@vinequeue/core'
import { NOOP_SENDER } from './noop-queue.ts'
import { interleave, median } from './stats.ts'

const ROUNDS = 7
const STARTS = 5

interface ChildResult {
  readonly firstMs: number
  readonly medianMs: number
}

async function child(cacheDir: string | undefined): Promise<ChildResult> {
  if (cacheDir !== undefined) process.env.NODE_COMPILE_CACHE = cacheDir
  const root = mkdtempSync(join(tmpdir(), 'vq-bench-cc-'))
  const times: number[] = []
  try {
    for (let i = 0; i <= STARTS; i++) {
      const q = createQueue({
        wal: { dir: join(root, String(i)), syncMode: 'always' },
        sender: { module: NOOP_SENDER },
      })
      const t0 = performance.now()
      await q.start()
      times.push(performance.now() - t0)
      await q.stop({ timeoutMs: 0 })
    }
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
  return { firstMs: times[0]!, medianMs: median(times.slice(1)) }
}

function runChild(cacheDir: string | undefined): ChildResult {
  const env = { ...process.env }
  delete env.NODE_COMPILE_CACHE
  const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), 'child', cacheDir ?? ''], {
    env,
    encoding: 'utf8',
  })
  return JSON.parse(out) as ChildResult
}

async function main(): Promise<void> {
  const cacheDir = mkdtempSync(join(tmpdir(), 'vq-bench-compile-cache-'))
  try {
    runChild(cacheDir) // fills the cache
    const on = { first: [] as number[], med: [] as number[] }
    const off = { first: [] as number[], med: [] as number[] }
    await interleave(
      ROUNDS,
      [
        () => {
          const r = runChild(cacheDir)
          on.first.push(r.firstMs)
          on.med.push(r.medianMs)
        },
        () => {
          const r = runChild(undefined)
          off.first.push(r.firstMs)
          off.med.push(r.medianMs)
        },
      ],
      (r) =>
        process.stderr.write(
          `round ${r}/${ROUNDS}: cache ${on.first.at(-1)!.toFixed(1)} / ${on.med.at(-1)!.toFixed(1)} ms, ` +
            `none ${off.first.at(-1)!.toFixed(1)} / ${off.med.at(-1)!.toFixed(1)} ms (first / median of later starts)\n`,
        ),
    )
    process.stdout.write(
      `node ${process.version}: start_empty_wal_ms, medians of ${ROUNDS} processes each\n` +
        `  first start in a process: cache ${median(on.first).toFixed(1)} ms, none ${median(off.first).toFixed(1)} ms (${(median(on.first) / median(off.first)).toFixed(2)})\n` +
        `  later starts:             cache ${median(on.med).toFixed(1)} ms, none ${median(off.med).toFixed(1)} ms (${(median(on.med) / median(off.med)).toFixed(2)})\n`,
    )
  } finally {
    rmSync(cacheDir, { recursive: true, force: true })
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv[2] === 'child') {
    process.stdout.write(JSON.stringify(await child(process.argv[3] || undefined)))
  } else {
    await main()
  }
}

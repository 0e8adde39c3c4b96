#!/usr/bin/env node
// Checks that the published packages work outside this monorepo: packs
// @vinequeue/wal, core and senders with `pnpm pack` (which turns `workspace:`
// and `catalog:` versions into real ones), checks no such version is left,
// installs the three tarballs with plain npm into a new project in a temp
// folder (their other dependencies come from the npm registry), and runs a
// script there: a queue with the file sender and a write-ahead log delivers
// 1000 items, and the installed `vinequeue-wal` command verifies the log.
// Run after the build: `pnpm pack-check` does both. Exit code 0 only if all holds.
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const packages = ['wal', 'core', 'senders']
const keep = process.argv.includes('--keep')
const work = mkdtempSync(join(tmpdir(), 'vq-pack-check-'))
const tarballs = join(work, 'tarballs')
const app = join(work, 'app')
mkdirSync(tarballs)
mkdirSync(app)

/** pnpm as this script was started by (`pnpm pack-check`), else the version the repository names. */
function pnpm(args, cwd) {
  const execPath = process.env.npm_execpath
  if (execPath && /pnpm/.test(execPath)) {
    return execFileSync(process.execPath, [execPath, ...args], { cwd, encoding: 'utf8' })
  }
  const pinned = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).packageManager
  return execFileSync('npx', ['-y', pinned, ...args], { cwd, encoding: 'utf8' })
}

// npm run by pnpm inherits pnpm's npm_config_* settings, which npm warns about: it gets a clean environment.
const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key)))

function step(what) {
  process.stdout.write(`pack-check: ${what}\n`)
}

let failed = false
try {
  for (const name of packages) {
    pnpm(['pack', '--pack-destination', tarballs], join(root, 'packages', name))
  }
  const files = readdirSync(tarballs).filter((f) => f.endsWith('.tgz'))
  step(`packed ${files.join(', ')}`)
  if (files.length !== packages.length) throw new Error(`expected ${packages.length} tarballs`)
  for (const file of files) {
    const manifest = execFileSync('tar', ['-xzOf', join(tarballs, file), 'package/package.json'], {
      encoding: 'utf8',
    })
    const left = manifest.match(/"(workspace|catalog):[^"]*"/g)
    if (left) throw new Error(`${file}: package.json still holds ${left.join(', ')}`)
  }
  step('no workspace: or catalog: versions left')

  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({ name: 'pack-check-app', private: true, type: 'module' }),
  )
  execFileSync(
    'npm',
    ['install', '--no-audit', '--no-fund', '--loglevel=error', ...files.map((f) => join(tarballs, f))],
    { cwd: app, env, stdio: ['ignore', 'ignore', 'inherit'] },
  )
  step('installed with npm')

  writeFileSync(
    join(app, 'app.mjs'),
    `import { readFileSync } from 'node:fs'
import { createQueue } from '@vinequeue/core'

const out = new URL('./delivered.ndjson', import.meta.url).pathname
const queue = createQueue({
  sender: { module: import.meta.resolve('@vinequeue/senders/file'), options: { path: out } },
  wal: { dir: new URL('./wal', import.meta.url).pathname },
  senderThreads: 1,
})
await queue.start()
for (let i = 0; i < 1000; i++) queue.enqueue({ i, event: 'page_view' })
await queue.drain()
const report = await queue.stop({ timeoutMs: 5000 })
const lines = readFileSync(out, 'utf8').trim().split('\\n')
if (lines.length !== 1000 || report.undeliveredCount !== 0) throw new Error(\`delivered \${lines.length} of 1000\`)
console.log('delivered 1000 items through the file sender')
`,
  )
  step(execFileSync(process.execPath, ['app.mjs'], { cwd: app, env, encoding: 'utf8' }).trim())
  step(
    execFileSync('npx', ['--no', 'vinequeue-wal', 'verify', 'wal'], {
      cwd: app,
      env,
      encoding: 'utf8',
    }).trim(),
  )
  step('OK')
} catch (err) {
  failed = true
  process.stderr.write(`pack-check: FAILED: ${err?.stack ?? err}\n`)
} finally {
  if (keep) step(`kept ${work}`)
  else rmSync(work, { recursive: true, force: true })
}
process.exitCode = failed ? 1 : 0

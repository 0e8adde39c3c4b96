#!/usr/bin/env node
// node-rdkafka (the dependency of packages/kafka-mock, a private test tool: librdkafka's mock
// Kafka cluster and its consumer, for the senders' Kafka tests and the bench's e2e_kafka step)
// is a native addon compiled at install time for one Node ABI, against whatever headers
// node-gyp is given. Two things go wrong on a machine without access to nodejs.org: a user
// config's `nodedir` (e.g. the system Node's headers) builds it for another Node than the one
// that runs the tests, and librdkafka leaves zstd out when zstd.h is missing. This script, run
// before the tests and the bench, checks that node-rdkafka loads under this Node with zstd, and
// if not rebuilds it against this Node's headers from the npm registry (the
// `node-<platform>-<arch>` package of the same version ships include/node).
//
//   node scripts/rdkafka.mjs            check, rebuild if needed (about 2 minutes), check again
//   node scripts/rdkafka.mjs headers    print a nodedir holding this Node's headers (fetched once)
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const version = process.versions.node
const NODE_GYP = 'node-gyp@11'

/** A directory with this Node's headers (`include/node/node.h`): from the environment, or fetched. */
function headersDir() {
  const given = process.env.npm_config_nodedir
  if (given && hasHeaders(given)) return given
  // Cached beside node-gyp's own header cache, so a new install or clone does not fetch them again.
  const dir = join(homedir(), '.cache', 'vinequeue', 'node-headers', version)
  const pkg = `node-${process.platform}-${process.arch}`
  const nodedir = join(dir, 'node_modules', pkg)
  if (!hasHeaders(nodedir)) {
    mkdirSync(dir, { recursive: true })
    execFileSync(
      'npm',
      ['install', '--prefix', dir, '--no-save', '--no-audit', '--no-fund', '--silent', `${pkg}@${version}`],
      { stdio: ['ignore', 'ignore', 'inherit'], env: cleanEnv() },
    )
  }
  if (!hasHeaders(nodedir)) fail(`the npm package ${pkg}@${version} brought no headers of Node ${version}`)
  return nodedir
}

/**
 * The environment for npm/npx calls, without the npm_* settings of the npm or pnpm that started
 * this script (an outer `npx -p node@24 -p pnpm` leaves `npm_config_package` behind, which an
 * inner npx would take as what to install).
 */
function cleanEnv(extra = {}) {
  const env = {}
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v
  return { ...env, ...extra }
}

/** Whether `dir` holds the headers of this very Node version (a config's nodedir may name another's). */
function hasHeaders(dir) {
  const file = join(dir, 'include', 'node', 'node_version.h')
  if (!existsSync(file)) return false
  const text = readFileSync(file, 'utf8')
  const part = (name) => text.match(new RegExp(`#define NODE_${name}_VERSION (\\d+)`))?.[1]
  return `${part('MAJOR')}.${part('MINOR')}.${part('PATCH')}` === version
}

function rdkafkaDir() {
  const require = createRequire(join(root, 'packages', 'kafka-mock', 'package.json'))
  return dirname(require.resolve('node-rdkafka/package.json'))
}

/** What node-rdkafka says under this Node: its librdkafka features, or why it does not load. */
function probe(dir) {
  const r = spawnSync(
    process.execPath,
    ['-e', `process.stdout.write(JSON.stringify(require(${JSON.stringify(dir)}).features))`],
    { encoding: 'utf8' },
  )
  if (r.status === 0) return { features: JSON.parse(r.stdout) }
  return {
    error: (r.stderr || `exit ${r.status}`).split('\n').find((l) => /Error|error/.test(l)) ?? r.stderr,
  }
}

/** librdkafka builds zstd in only where zstd.h is found (Debian: libzstd-dev). */
function ensureZstdHeader() {
  if (['/usr/include/zstd.h', '/usr/local/include/zstd.h'].some((f) => existsSync(f))) return
  const isRoot = process.getuid?.() === 0
  const apt = spawnSync('sh', ['-c', 'command -v apt-get'], { encoding: 'utf8' }).status === 0
  if (!isRoot || !apt) {
    fail(
      'librdkafka needs zstd.h to read zstd-compressed Kafka batches in the tests: install it ' +
        '(Debian/Ubuntu: apt-get install libzstd-dev; Fedora: dnf install libzstd-devel; macOS: brew install zstd) and run again',
    )
  }
  console.error('rdkafka: installing libzstd-dev (zstd.h) for the librdkafka build')
  const install = () =>
    spawnSync('apt-get', ['install', '-y', '-q', 'libzstd-dev'], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    }).status === 0
  if (!install()) {
    spawnSync('apt-get', ['update', '-q'], { stdio: ['ignore', 'ignore', 'inherit'] })
    if (!install()) fail('apt-get install libzstd-dev failed')
  }
}

function fail(message) {
  console.error(`rdkafka: ${message}`)
  process.exit(1)
}

if (process.argv[2] === 'headers') {
  process.stdout.write(`${headersDir()}\n`)
} else {
  const dir = rdkafkaDir()
  const first = probe(dir)
  if (!first.features?.includes('zstd')) {
    console.error(
      `rdkafka: node-rdkafka ${first.error ? `does not load under Node ${version} (${first.error.trim()})` : 'was built without zstd'}; rebuilding it for Node ${version} (about 2 minutes)`,
    )
    ensureZstdHeader()
    const nodedir = headersDir()
    const build = spawnSync('npx', ['-y', NODE_GYP, 'rebuild', `--nodedir=${nodedir}`], {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'inherit'],
      env: cleanEnv({ npm_config_nodedir: nodedir }),
    })
    if (build.status !== 0) fail(`node-gyp rebuild failed in ${dir}`)
    const again = probe(dir)
    if (!again.features) fail(`node-rdkafka still does not load: ${again.error}`)
    if (!again.features.includes('zstd')) fail('node-rdkafka was rebuilt without zstd')
    console.error(`rdkafka: node-rdkafka rebuilt for Node ${version}`)
  }
}

#!/usr/bin/env node
// The `vinequeue-wal` command. This file is committed, not built: package
// managers link a package's bins when they install it, and in this monorepo
// that happens before `dist/` exists — a bin pointing into dist/ would not be
// linked (pnpm warns ENOENT) and `npx vinequeue-wal` would then ask the
// public registry for a package of that name instead.
try {
  await import('../dist/cli/main.js')
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes('main.js')) throw err
  process.stderr.write(
    'vinequeue-wal: the package is not built yet (dist/cli/main.js is missing): run the build first\n',
  )
  process.exitCode = 2
}

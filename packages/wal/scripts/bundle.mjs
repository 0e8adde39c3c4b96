/**
 * Bundles the log's compiled modules (dist/, from tsc) into one file,
 * dist/wal.js, the package's main entry: a thread that opens a log (the
 * queue's pipeline thread, at every start()) loads one module instead of
 * about twenty (note `start.bundles` in packages/bench/README.md).
 *
 * The package's other entries (./errors, ./defaults, ./batch-records) stay
 * files of their own and the bundle imports them, so a class such as
 * WalError is one class whichever entry it comes from. Dependencies stay
 * imports (they resolve from this package).
 */
import { fileURLToPath } from 'node:url'
import { rolldown } from 'rolldown'

const dist = fileURLToPath(new URL('../dist/', import.meta.url))
const ownEntries = new Set(['errors.js', 'defaults.js', 'format/batch-records.js'].map((f) => dist + f))

const bundle = await rolldown({
  input: `${dist}index.js`,
  platform: 'node',
  external: (id, _importer, resolved) =>
    id.startsWith('node:') ||
    /^(@node-rs\/crc32|snappy|msgpackr)(\/|$)/.test(id) ||
    (resolved && ownEntries.has(id)),
})
await bundle.write({ file: `${dist}wal.js`, format: 'esm' })
await bundle.close()

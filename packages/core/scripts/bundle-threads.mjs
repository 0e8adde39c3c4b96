/**
 * Bundles the pipeline thread's compiled modules (dist/pipeline/, from tsc)
 * into dist/pipeline-thread/: its entry, the pipeline, and the chunks it
 * imports later (the WAL stage only with a WAL). The thread is started at
 * every start(), and loading four modules instead of about forty is a good
 * part of start() (note `start.bundles` in packages/bench/README.md).
 *
 * Dependencies (@vinequeue/wal, msgpackr) and Node's modules stay imports.
 * The sender threads are not bundled: the user's sender module imports
 * @vinequeue/core/sender itself, so that thread loads those modules anyway.
 */
import { rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { rolldown } from 'rolldown'

const dist = fileURLToPath(new URL('../dist/', import.meta.url))
// (No chunk of an earlier build is left behind to be packed.)
rmSync(`${dist}pipeline-thread`, { recursive: true, force: true })

const bundle = await rolldown({
  input: `${dist}pipeline/entry.js`,
  platform: 'node',
  external: [/^node:/, /^msgpackr(\/|$)/, /^@vinequeue\/wal(\/|$)/],
})
await bundle.write({ dir: `${dist}pipeline-thread`, format: 'esm', chunkFileNames: '[name].js' })
await bundle.close()

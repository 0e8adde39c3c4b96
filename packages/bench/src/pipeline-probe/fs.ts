/**
 * A `wal.fs` module for the bench: node's file system (the WAL's default,
 * `nodeFs`) with fdatasync timed, which also starts the pause sampler on the
 * thread that loads it — the queue's pipeline thread, the log's owner. The
 * probe's tag is the module URL's `tag` parameter (`fs.js?tag=lowLatency`:
 * one module instance per tag). Every call goes to `nodeFs`, optional
 * callback forms included: the log under measurement takes the same paths
 * as with its default file system.
 */
import { nodeFs, type WalFs } from '@vinequeue/wal'
import { recordFdatasync, startSampler } from './sampler.ts'

startSampler(new URL(import.meta.url).searchParams.get('tag') ?? 'pipeline')

const fdatasync = nodeFs.fdatasync
const probeFs: WalFs = {
  ...nodeFs,
  fdatasyncSync: (fd) => {
    const t0 = performance.now()
    nodeFs.fdatasyncSync(fd)
    recordFdatasync(performance.now() - t0)
  },
  ...(fdatasync
    ? {
        fdatasync: (fd: number, callback: (err: NodeJS.ErrnoException | null) => void) => {
          const t0 = performance.now()
          fdatasync(fd, (err) => {
            recordFdatasync(performance.now() - t0)
            callback(err)
          })
        },
      }
    : {}),
}

export default probeFs

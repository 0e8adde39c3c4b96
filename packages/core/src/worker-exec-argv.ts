import { Worker } from 'node:worker_threads'

let cached: string[] | undefined | null = null

/**
 * Node flags for a thread the queue starts: `undefined` (inherit, Node's
 * default, which quietly skips process-wide flags such as `--expose-gc`)
 * unless the parent runs with `--input-type`, which a worker started from a
 * file rejects (`node --input-type=module -e …`; same issue as
 * babel/babel#18131). Then the flags are passed explicitly without it, and
 * since Node validates an explicit list, flags it calls invalid for workers
 * are found once with a throwaway worker and left out.
 */
export function workerExecArgv(): string[] | undefined {
  if (cached !== null) return cached
  if (!process.execArgv.some((arg) => arg.startsWith('--input-type'))) return (cached = undefined)
  let argv = process.execArgv.filter((arg) => !arg.startsWith('--input-type'))
  for (let tries = 0; tries < 8; tries++) {
    try {
      void new Worker('', { eval: true, execArgv: argv }).terminate()
      break
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw err
      const bad = (err as Error).message.slice((err as Error).message.lastIndexOf(': ') + 2).split(/,\s*/)
      argv = argv.filter((arg) => !bad.some((flag) => arg === flag || arg.startsWith(`${flag}=`)))
    }
  }
  cached = argv
  return argv
}

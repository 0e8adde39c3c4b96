/**
 * The floor under `queue.start()`: two bare worker threads started at once
 * by the calling thread, as start() starts the pipeline thread and the first
 * sender thread side by side, both running an empty ES module. Timed from
 * the first `new Worker` to both threads' first messages arriving here — two
 * thread boots sharing the machine's cores, no code of the queue. start()
 * cannot be shorter: it needs the pipeline thread to have opened the log and
 * a sender thread to have built its sender.
 *
 * This file is also the threads' code: as a thread it posts at once.
 */
import { once } from 'node:events'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'

const ROLE_KEY = '__vqThreadFloor'

/** One boot of two threads side by side, in ms. */
export async function threadPairBoot(): Promise<number> {
  const t0 = performance.now()
  const threads = [0, 1].map(() => new Worker(new URL(import.meta.url), { workerData: { [ROLE_KEY]: true } }))
  await Promise.all(threads.map((t) => once(t, 'message')))
  const ms = performance.now() - t0
  await Promise.all(threads.map((t) => t.terminate()))
  return ms
}

if (!isMainThread && (workerData as Record<string, unknown> | undefined)?.[ROLE_KEY] === true) {
  parentPort!.postMessage('up')
}

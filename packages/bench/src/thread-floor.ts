/**
 * The floor under `queue.start()`: a worker thread that starts a worker
 * thread of its own, as the queue's pipeline thread starts its sender
 * threads, both running an empty ES module. Timed from `new Worker` on the
 * calling thread to the inner thread's first message arriving there (through
 * the outer one) — two thread boots one after the other and two message
 * hops, no code of the queue. start() cannot be shorter: it needs a sender
 * thread to have built its sender, and that thread is started by the
 * pipeline thread.
 *
 * This file is also the threads' code: as the outer thread it starts the
 * inner one and forwards its message; as the inner one it posts at once.
 */
import { once } from 'node:events'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'

const ROLE_KEY = '__vqThreadFloor'
type Role = 'outer' | 'inner'

/** One nested boot, in ms. */
export async function nestedThreadBoot(): Promise<number> {
  const t0 = performance.now()
  const outer = new Worker(new URL(import.meta.url), { workerData: { [ROLE_KEY]: 'outer' satisfies Role } })
  await once(outer, 'message')
  const ms = performance.now() - t0
  await outer.terminate()
  return ms
}

const role = isMainThread ? undefined : (workerData as Record<string, Role> | undefined)?.[ROLE_KEY]
if (role === 'outer') {
  const inner = new Worker(new URL(import.meta.url), { workerData: { [ROLE_KEY]: 'inner' satisfies Role } })
  inner.once('message', (msg: unknown) => parentPort!.postMessage(msg))
} else if (role === 'inner') {
  parentPort!.postMessage('up')
}

/**
 * Pipeline thread entry: wiring only (pipeline.ts holds the logic). What
 * must succeed for start() — the dead-letter file, the write-ahead log — is
 * opened first (start-up.ts), then `ready` goes out, then the pipeline's own
 * code loads and runs (the host's `started` lets it drain). The thread stays
 * alive through its parentPort listener until the host terminates it after
 * `stopped`. The sender threads are not started here: the queue's thread
 * starts them beside this one (queue/sender-threads.ts).
 */
import { parentPort, type TransferListItem, workerData } from 'node:worker_threads'
import type { HostToPipeline, PipelineToHost, PipelineWorkerData } from './protocol.ts'

const port = parentPort!
const data = workerData as PipelineWorkerData
const post = (msg: PipelineToHost, transfer?: TransferListItem[]): void => port.postMessage(msg, transfer)
// A message the host posts meanwhile waits in the port: the listener is attached with the pipeline.
import('./start-up.ts')
  .then(({ openForStart }) => openForStart(data, post))
  .then(async (opened) => {
    post({ __vq: 1, type: 'ready' })
    const { Pipeline } = await import('./pipeline.ts')
    const pipeline = new Pipeline(data, post, opened)
    port.on('message', (msg: HostToPipeline) => pipeline.onMessage(msg))
    return pipeline.run()
  })
  .catch(async (err: unknown) => {
    const { errorInfo } = await import('./protocol.ts')
    post({ __vq: 1, type: 'fatal', error: errorInfo(err) })
    // Let the host see the thread die (its 'exit' handler puts the queue down).
    setImmediate(() => process.exit(1))
  })

/**
 * Pipeline thread entry: wiring only (pipeline.ts holds the logic). The
 * thread stays alive through its parentPort listener until the host
 * terminates it after `stopped`. The sender threads are not started here:
 * the queue's thread starts them beside this one (queue/sender-threads.ts).
 */
import { parentPort, type TransferListItem, workerData } from 'node:worker_threads'
import type { HostToPipeline, PipelineToHost, PipelineWorkerData } from './protocol.ts'

const port = parentPort!
const data = workerData as PipelineWorkerData
const post = (msg: PipelineToHost, transfer?: TransferListItem[]): void => port.postMessage(msg, transfer)
// With a WAL, its stage (and the log's code) is fetched beside the pipeline's
// rather than after it: pipeline.ts imports the same module when it opens the log.
if (data.config.wal) import('./wal-backlog.ts').catch(() => {})
// A message the host posts while the code loads waits in the port: the listener is attached with the pipeline.
import('./pipeline.ts')
  .then(({ Pipeline }) => {
    const pipeline = new Pipeline(data, post)
    port.on('message', (msg: HostToPipeline) => pipeline.onMessage(msg))
    return pipeline.run()
  })
  .catch(async (err: unknown) => {
    const { errorInfo } = await import('./protocol.ts')
    post({ __vq: 1, type: 'fatal', error: errorInfo(err) })
    // Let the host see the thread die (its 'exit' handler puts the queue down).
    setImmediate(() => process.exit(1))
  })

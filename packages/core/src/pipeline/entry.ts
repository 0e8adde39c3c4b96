/**
 * Pipeline thread entry: wiring only (pipeline.ts holds the logic). The
 * thread stays alive through its parentPort listener until the host
 * terminates it after `stopped`.
 */
import { parentPort, type TransferListItem, workerData } from 'node:worker_threads'
import { Pipeline } from './pipeline.ts'
import { errorInfo, type HostToPipeline, type PipelineToHost, type PipelineWorkerData } from './protocol.ts'

const port = parentPort!
const post = (msg: PipelineToHost, transfer?: TransferListItem[]): void => port.postMessage(msg, transfer)
const pipeline = new Pipeline(workerData as PipelineWorkerData, post)
port.on('message', (msg: HostToPipeline) => pipeline.onMessage(msg))
pipeline.run().catch((err: unknown) => {
  post({ __vq: 1, type: 'fatal', error: errorInfo(err) })
  // Let the host see the thread die (its 'exit' handler puts the queue down).
  setImmediate(() => process.exit(1))
})

/**
 * Pipeline thread entry: wiring only (pipeline.ts holds the logic). The
 * thread stays alive through its parentPort listener until the host
 * terminates it after `stopped`.
 *
 * The sender pool is started first, from a small module graph, and the
 * pipeline's own code (and the WAL's) is loaded while its threads boot on
 * another core: start() waits for a sender thread to build its sender, and
 * booting a thread costs about as much as loading that code (note
 * `start.timeline` in packages/bench/README.md).
 */
import { parentPort, type TransferListItem, workerData } from 'node:worker_threads'
import { MetricsWriter } from '../metrics/writer.ts'
import { PoolTransport } from './pool-transport.ts'
import { errorInfo, type HostToPipeline, type PipelineToHost, type PipelineWorkerData } from './protocol.ts'

const port = parentPort!
const data = workerData as PipelineWorkerData
const post = (msg: PipelineToHost, transfer?: TransferListItem[]): void => port.postMessage(msg, transfer)
const fail = (err: unknown): void => {
  post({ __vq: 1, type: 'fatal', error: errorInfo(err) })
  // Let the host see the thread die (its 'exit' handler puts the queue down).
  setImmediate(() => process.exit(1))
}
const { sender } = data.config
const metrics = new MetricsWriter(data.metrics)
const pool = sender ? new PoolTransport({ ...data.config, sender }, metrics) : undefined
// (Awaited by the pipeline's run(): not unhandled if loading the pipeline's code fails first.)
pool?.ready().catch(() => {})
// A stop posted while the code loads waits in the port's queue: the listener is attached synchronously after.
import('./pipeline.ts')
  .then(({ Pipeline }) => {
    const pipeline = new Pipeline(data, post, { metrics, pool })
    port.on('message', (msg: HostToPipeline) => pipeline.onMessage(msg))
    return pipeline.run()
  }, fail)
  .catch(fail)

/**
 * Pipeline thread entry: wiring only (pipeline.ts holds the logic). The
 * thread stays alive through its parentPort listener until the host
 * terminates it after `stopped`.
 *
 * The sender pool is started first, from a module that imports next to
 * nothing (pool-start.ts), and the pipeline's own code (and the WAL's) is
 * loaded while its threads boot on another core: start() waits for a sender
 * thread to build its sender, and booting a thread costs about as much as
 * loading that code (note `start.timeline` in packages/bench/README.md).
 */
import { parentPort, type TransferListItem, workerData } from 'node:worker_threads'
import { startSenderPool } from './pool-start.ts'
import type { HostToPipeline, PipelineToHost, PipelineWorkerData } from './protocol.ts'

const port = parentPort!
const data = workerData as PipelineWorkerData
const post = (msg: PipelineToHost, transfer?: TransferListItem[]): void => port.postMessage(msg, transfer)
const { sender } = data.config
const pool = sender ? startSenderPool({ ...data.config, sender }) : undefined
// A message the host posts while the code loads waits in the port: the listener is attached with the pipeline.
import('./pipeline.ts')
  .then(({ Pipeline }) => {
    const pipeline = new Pipeline(data, post, pool)
    port.on('message', (msg: HostToPipeline) => pipeline.onMessage(msg))
    return pipeline.run()
  })
  .catch(async (err: unknown) => {
    const { errorInfo } = await import('./protocol.ts')
    post({ __vq: 1, type: 'fatal', error: errorInfo(err) })
    // Let the host see the thread die (its 'exit' handler puts the queue down).
    setImmediate(() => process.exit(1))
  })

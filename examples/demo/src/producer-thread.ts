/**
 * Worker thread entry: a producer on its own lane of the queue's ring.
 * Receives `queue.producerPort()` in workerData and enqueues its share.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { connectProducer, type ProducerHandle } from '@vinequeue/core'
import type { Share } from './events.ts'
import { produce } from './produce.ts'

export interface ProducerThreadData {
  readonly handle: ProducerHandle
  readonly share: Share
}

const { handle, share } = workerData as ProducerThreadData
const producer = connectProducer(handle)
await produce(producer, share)
// Publishes what is left and lets the pipeline retire this lane once drained.
producer.close()
parentPort!.postMessage({ type: 'done', ref: share.ref })

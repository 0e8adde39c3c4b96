/**
 * Sender-pool thread (piscina worker): loads the user's sender module once,
 * then turns each task into `sender.send(batch)`. Wiring only; the contract
 * is in sender/types.ts.
 */
import { BroadcastChannel, threadId } from 'node:worker_threads'
import { workerData } from 'piscina'
import { Batch } from '../batch/batch-format.ts'
import { errorInfo } from '../pipeline/protocol.ts'
import type { Sender } from '../sender/types.ts'
import type {
  SenderCloseReply,
  SenderCloseRequest,
  SenderOpened,
  SenderPoolWorkerData,
  SenderTask,
  SenderTaskResult,
} from './protocol.ts'

async function load(): Promise<(task: SenderTask) => Promise<SenderTaskResult>> {
  const data = workerData as SenderPoolWorkerData
  const mod = await import(data.module)
  const factory = mod.default ?? mod.createSender
  if (typeof factory !== 'function') {
    throw new TypeError(
      `Sender module ${data.module} must export a factory as default (export default defineSender((options) => ({ send })))`,
    )
  }
  const sender: Sender = await factory(data.options)
  if (!sender || typeof sender.send !== 'function') {
    throw new TypeError(
      `Sender module ${data.module}: its factory must return an object with a send(batch) method`,
    )
  }

  if (typeof sender.close !== 'undefined' && typeof sender.close !== 'function') {
    throw new TypeError(`Sender module ${data.module}: close must be a function when present`)
  }
  listenForClose(data.closeChannel, sender)

  return async function run(task: SenderTask): Promise<SenderTaskResult> {
    switch (task.type) {
      case 'ping':
        return { __vq: 1, type: 'pong' }
      case 'send': {
        const bytes = new Uint8Array(task.slab, task.byteOffset, task.byteLength)
        const batch = new Batch(bytes, task.count, task.batchId)
        try {
          const result = await sender.send(batch, {
            signal: AbortSignal.timeout(data.sendTimeoutMs),
            attempt: task.attempt,
          })
          return result?.failed?.length
            ? { __vq: 1, type: 'sent', failed: result.failed.map((f) => ({ ...f })) }
            : { __vq: 1, type: 'sent' }
        } catch (err) {
          return { __vq: 1, type: 'failed', error: errorInfo(err) }
        }
      }
      default: {
        const never: never = task
        throw new TypeError(`Unknown sender task ${JSON.stringify(never)}`)
      }
    }
  }
}

/** Runs the sender's close() once when the pipeline asks (queue stop), and replies. */
function listenForClose(name: string, sender: Sender): void {
  const channel = new BroadcastChannel(name)
  // The pool's own lifetime keeps this thread alive; the channel must not.
  channel.unref()
  let closing = false
  channel.onmessage = async (event: MessageEvent) => {
    const msg = event.data as SenderCloseRequest
    if (msg?.__vq !== 1 || msg.type !== 'close' || closing) return
    closing = true
    let reply: SenderCloseReply = { __vq: 1, type: 'closed' }
    try {
      await sender.close?.()
    } catch (err) {
      reply = { __vq: 1, type: 'closed', error: errorInfo(err) }
    }
    channel.postMessage(reply)
    channel.close()
  }
  channel.postMessage({ __vq: 1, type: 'opened', threadId } satisfies SenderOpened)
}

const handler: Promise<(task: SenderTask) => Promise<SenderTaskResult>> = load()
export default handler

/**
 * Sender-pool thread (piscina worker): loads the user's sender module once,
 * then turns each task into `sender.send(batch)`. Wiring only; the contract
 * is in sender/types.ts.
 */
// piscina hands its pool's workerData to each worker as the thread's own
// workerData (piscina/dist/worker.js: commonState.workerData =
// worker_threads.workerData); reading it here spares the thread loading
// piscina's main module a second time (about 20 ms of queue.start()).
import { BroadcastChannel, threadId, workerData } from 'node:worker_threads'
import { Batch } from '../batch/batch-format.ts'
import { SendTimeoutError } from '../errors.ts'
import { errorInfo } from '../pipeline/protocol.ts'
import { rejectedOutcome, resolvedOutcome } from '../sender/outcome.ts'
import type { Sender } from '../sender/types.ts'
import type {
  SenderCloseReply,
  SenderCloseRequest,
  SenderOpened,
  SenderPoolWorkerData,
  SenderTask,
  SenderTaskResult,
} from './protocol.ts'
import { joinWatchdog, WatchdogSlot } from './watchdog.ts'

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
  const watchdog = new Int32Array(data.watchdog)
  const row = joinWatchdog(data.watchdog, threadId)

  return async function run(task: SenderTask): Promise<SenderTaskResult> {
    switch (task.type) {
      case 'ping':
        return { __vq: 1, type: 'pong' }
      case 'send': {
        const bytes = new Uint8Array(task.slab, task.byteOffset, task.byteLength)
        const batch = new Batch(bytes, task.count, task.batchId)
        if (row >= 0) Atomics.add(watchdog, row + WatchdogSlot.RUNNING, 1)
        const controller = new AbortController()
        let timer: NodeJS.Timeout | undefined
        // The deadline settles the task even if the send never does (it ignored
        // its signal): the slot is free for the next batch, the batch is retried.
        const deadline = new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            const err = new SendTimeoutError(`send did not settle within ${data.sendTimeoutMs} ms`, {
              timeoutMs: data.sendTimeoutMs,
            })
            controller.abort(err)
            reject(err)
          }, data.sendTimeoutMs)
        })
        try {
          const result: unknown = await Promise.race([
            sender.send(batch, { signal: controller.signal, attempt: task.attempt }),
            deadline,
          ])
          const outcome = resolvedOutcome(batch, result)
          if (outcome.error) return { __vq: 1, type: 'failed', error: outcome.error }
          return outcome.failed
            ? { __vq: 1, type: 'sent', failed: outcome.failed }
            : { __vq: 1, type: 'sent' }
        } catch (err) {
          const outcome = rejectedOutcome(batch, err)
          if (outcome.failed) return { __vq: 1, type: 'sent', failed: outcome.failed }
          return { __vq: 1, type: 'failed', error: outcome.error! }
        } finally {
          clearTimeout(timer)
          if (row >= 0) Atomics.sub(watchdog, row + WatchdogSlot.RUNNING, 1)
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

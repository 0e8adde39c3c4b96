import { Batch } from '../batch/batch-format.ts'
import { SendTimeoutError } from '../errors.ts'
import { errorInfo, type HostToPipeline, type PipelineToHost } from '../pipeline/protocol.ts'
import { SLAB_HEADER_BYTES } from '../pipeline/slab-pool.ts'
import { rejectedOutcome, resolvedOutcome } from '../sender/outcome.ts'
import type { ResolvedOptions } from './types.ts'

type SendMessage = Extract<PipelineToHost, { type: 'send' }>
type SendResultMessage = Extract<HostToPipeline, { type: 'sendResult' }>

/**
 * Runs the user's in-thread `send` for a batch the pipeline posted (it reads
 * the shared slab in place) and answers exactly once: its result, its error,
 * or — past `sendTimeoutMs` — a timeout marked `abandoned`, since the user's
 * promise may still be reading the slab (the pipeline then retires it).
 */
export function runInThreadSend(
  msg: SendMessage,
  options: Pick<ResolvedOptions, 'send' | 'sendTimeoutMs'>,
  reply: (result: SendResultMessage) => void,
): void {
  const send = options.send!
  const batch = new Batch(
    new Uint8Array(msg.slab, SLAB_HEADER_BYTES, msg.byteLength),
    msg.count,
    msg.id,
    msg.key,
  )
  const controller = new AbortController()
  let settled = false
  const answer = (result: Pick<SendResultMessage, 'failed' | 'error' | 'abandoned'>): void => {
    if (settled) return
    settled = true
    clearTimeout(timer)
    reply({ __vq: 1, type: 'sendResult', batchId: msg.batchId, attempt: msg.attempt, ...result })
  }
  const timer = setTimeout(() => {
    const err = new SendTimeoutError(`send did not settle within ${options.sendTimeoutMs} ms`, {
      timeoutMs: options.sendTimeoutMs,
    })
    controller.abort(err)
    answer({ error: errorInfo(err), abandoned: true })
  }, options.sendTimeoutMs)
  timer.unref()
  Promise.resolve()
    .then(() => send(batch, { signal: controller.signal, attempt: msg.attempt }))
    .then(
      (result: unknown) => answer(resolvedOutcome(batch, result)),
      (err: unknown) => answer(rejectedOutcome(batch, err)),
    )
}

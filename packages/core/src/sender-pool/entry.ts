/**
 * Sender thread: loads the user's sender module once, then turns each task
 * that arrives on its port into `sender.send(batch)`. Started by the queue's
 * thread (queue/sender-threads.ts), which hears whether the sender was
 * built; the pipeline thread holds the port's other end. Wiring only; the
 * contract is in sender/types.ts.
 */
import { fileURLToPath } from 'node:url'
import { BroadcastChannel, parentPort, threadId, workerData } from 'node:worker_threads'
import { Batch } from '../batch/batch-format.ts'
import { SendTimeoutError } from '../errors.ts'
import { type ErrorInfo, errorInfo } from '../pipeline/protocol.ts'
import { rejectedOutcome, resolvedOutcome } from '../sender/outcome.ts'
import type { Sender } from '../sender/types.ts'
import {
  type SenderCloseReply,
  type SenderCloseRequest,
  type SenderPoolShared,
  type SenderTask,
  type SenderThreadData,
  type SenderThreadMessage,
  type SenderThreadStatus,
  type SendReply,
  senderModulePath,
} from './protocol.ts'
import { closingRequested, joinWatchdog, WatchdogSlot } from './watchdog.ts'

/** Builds the sender and returns what runs each task; a failure is the load error every task is answered with. */
async function load(data: SenderPoolShared): Promise<((task: SenderTask) => Promise<SendReply>) | ErrorInfo> {
  let sender: Sender
  try {
    sender = await build(data)
  } catch (err) {
    return (err as { info?: ErrorInfo }).info ?? loadFailure(data.module, 'load', err)
  }
  // Listening before the row is claimed: a close request sent after the pipeline
  // saw the row reaches this thread; one sent before it is seen as CLOSING.
  const close = listenForClose(data.closeChannel, sender)
  const watchdog = new Int32Array(data.watchdog)
  const row = joinWatchdog(data.watchdog, threadId)
  if (closingRequested(data.watchdog)) close()

  return async function run(task: SenderTask): Promise<SendReply> {
    const bytes = new Uint8Array(task.slab, task.byteOffset, task.byteLength)
    const batch = new Batch(bytes, task.count, task.batchId, task.batchKey)
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
      if (outcome.error) return { type: 'failed', error: outcome.error }
      return outcome.failed ? { type: 'sent', failed: outcome.failed } : { type: 'sent' }
    } catch (err) {
      const outcome = rejectedOutcome(batch, err)
      if (outcome.failed) return { type: 'sent', failed: outcome.failed }
      return { type: 'failed', error: outcome.error! }
    } finally {
      clearTimeout(timer)
      if (row >= 0) Atomics.sub(watchdog, row + WatchdogSlot.RUNNING, 1)
    }
  }
}

/** Imports the sender module and builds its sender; a failure carries its ErrorInfo as `info`. */
async function build(data: SenderPoolShared): Promise<Sender> {
  const fail = (stage: 'load' | 'factory', err: unknown): Error =>
    Object.assign(new Error('sender load failed'), { info: loadFailure(data.module, stage, err) })
  let mod: Record<string, unknown>
  try {
    mod = await import(data.module)
  } catch (err) {
    throw fail('load', err)
  }
  const factory = mod.default ?? mod.createSender
  if (typeof factory !== 'function') {
    throw fail(
      'load',
      new TypeError(
        'it must export a factory as default (export default defineSender((options) => ({ send })))',
      ),
    )
  }
  let sender: Sender
  try {
    sender = await factory(data.options)
  } catch (err) {
    throw fail('factory', err)
  }
  if (!sender || typeof sender.send !== 'function') {
    throw fail('load', new TypeError('its factory must return an object with a send(batch) method'))
  }
  if (typeof sender.close !== 'undefined' && typeof sender.close !== 'function') {
    throw fail('load', new TypeError('close must be a function when present'))
  }
  return sender
}

/**
 * What start() rejects with when a sender thread cannot build its sender:
 * the factory refusing its options (an InvalidConfigError, as the bundled
 * senders throw through ConfigCheck, or a TypeError or RangeError) is
 * InvalidConfigError;
 * anything else — not found, a syntax error (its file and line named), no
 * factory, a factory failing otherwise — is SenderLoadError. Both name the
 * module and keep the original error as `cause`.
 */
function loadFailure(module: string, stage: 'load' | 'factory', err: unknown): ErrorInfo {
  const cause = errorInfo(err)
  const where = senderModulePath(module)
  if (
    stage === 'factory' &&
    (err instanceof TypeError || err instanceof RangeError || cause.code === 'VQ_INVALID_CONFIG')
  ) {
    const message = `Sender module ${where} refused its options: ${cause.message}`
    return { name: 'InvalidConfigError', code: 'VQ_INVALID_CONFIG', message, module: where, cause }
  }
  const at = stage === 'load' && err instanceof SyntaxError ? syntaxErrorLocation(module) : undefined
  const message =
    stage === 'factory'
      ? `Sender module ${where}: its factory failed: ${cause.name}: ${cause.message}`
      : `Sender module ${where} could not be loaded: ${cause.name}: ${cause.message}${at ? ` (at ${at})` : ''}`
  return { name: 'SenderLoadError', code: 'VQ_SENDER_LOAD', message, module: where, cause }
}

/**
 * Where a module graph fails to parse, as `path:line`. Node (22 and 24 as
 * well as 20) gives a dynamic import's SyntaxError no file or line (they are printed only for an
 * uncaught one), so the import is repeated in a child process whose stderr
 * names them — nothing runs there: a graph that does not parse is not
 * evaluated. Only on this failure path; undefined if it cannot tell.
 */
function syntaxErrorLocation(module: string): string | undefined {
  try {
    // (Loaded here, on this failure path only: node:child_process brings net, dgram and
    // streams with it, a few ms of every sender thread's start-up otherwise.)
    const { spawnSync } = process.getBuiltinModule('node:child_process')
    const { stderr } = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', `await import(${JSON.stringify(module)})`],
      {
        encoding: 'utf8',
        timeout: 10_000,
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    )
    const at = /^(file:\/\/\S+):(\d+)$/m.exec(stderr ?? '')
    return at ? `${fileURLToPath(at[1]!)}:${at[2]}` : undefined
  } catch {
    return undefined
  }
}

/**
 * Runs the sender's close() once when the pipeline asks (queue stop), and
 * replies. Returns the same close, for a thread that finds the request
 * already made.
 */
function listenForClose(name: string, sender: Sender): () => void {
  const channel = new BroadcastChannel(name)
  // The pool's own lifetime keeps this thread alive; the channel must not.
  channel.unref()
  let closing = false
  const close = async (): Promise<void> => {
    if (closing) return
    closing = true
    let reply: SenderCloseReply = { __vq: 1, type: 'closed', threadId }
    try {
      await sender.close?.()
    } catch (err) {
      reply = { __vq: 1, type: 'closed', threadId, error: errorInfo(err) }
    }
    channel.postMessage(reply)
    channel.close()
  }
  channel.onmessage = (event: MessageEvent) => {
    const msg = event.data as SenderCloseRequest
    if (msg?.__vq === 1 && msg.type === 'close') void close()
  }
  return () => void close()
}

const { port, ...shared } = workerData as SenderThreadData
const post = (msg: SenderThreadMessage): void => port.postMessage(msg)
// Something the sender started throws outside any send (a timer, a stream's
// 'error'): the thread ends as it would have, but says why first, so that
// the sends it cuts short fail with that error rather than an anonymous exit.
process.on('uncaughtException', (err) => {
  post({ __vq: 1, type: 'crashed', error: errorInfo(err) })
  process.exit(1)
})
const loaded = load(shared)
// Tasks that come while the sender is being built wait for it. The port's
// listener keeps the thread alive until the queue's thread terminates it.
port.on('message', (task: SenderTask) => {
  void loaded
    .then((run) => (typeof run === 'function' ? run(task) : ({ type: 'failed', error: run } as const)))
    .catch((err: unknown): SendReply => ({ type: 'failed', error: errorInfo(err) }))
    .then((reply) => post({ __vq: 1, type: 'reply', task: task.task, reply }))
})
// (To the queue's thread, which waits for it in start().)
void loaded.then((run) =>
  parentPort!.postMessage(
    (typeof run === 'function'
      ? { __vq: 1, type: 'built' }
      : { __vq: 1, type: 'loadFailed', error: run }) satisfies SenderThreadStatus,
  ),
)

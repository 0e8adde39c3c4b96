import { MessageChannel, Worker } from 'node:worker_threads'
import { ErrorCodes } from '../errors.ts'
import type { ErrorInfo, PipelineConfig } from '../pipeline/protocol.ts'
import {
  type SenderPoolShared,
  type SenderThreadData,
  type SenderThreadPort,
  type SenderThreadStatus,
  senderModulePath,
} from '../sender-pool/protocol.ts'
import { createWatchdogBuffer } from '../sender-pool/watchdog.ts'
import { workerExecArgv } from '../worker-exec-argv.ts'

/** A thread that exits sooner than this after it started is replaced only after this long (a module that exits at load does not spin). */
const REPLACE_DELAY_MS = 1000

/**
 * The sender threads of a queue with a module sender, started by the
 * queue's thread beside the pipeline thread (not by it: two thread boots one
 * after the other were most of start(), note `start.timeline` in
 * packages/bench/README.md). Each thread gets one end of a MessageChannel;
 * the pipeline thread gets the other (`SenderThreadPort`) and does all the
 * sending (pipeline/pool-transport.ts). This side only starts threads,
 * replaces one that exits while the queue runs (its port goes to the
 * pipeline through `hand`, as do those of threads `add`ed later), terminates one the pipeline's watchdog
 * found stuck, and terminates them all at the end. Each thread tells this
 * side whether it built its sender: `built` is what start() waits for.
 */
export class SenderThreads {
  readonly shared: SenderPoolShared
  readonly #threads = new Map<number, Worker>()
  /** Gives the pipeline a thread started after the first ones (more of them, or a replacement). */
  readonly #hand: (thread: SenderThreadPort) => void
  readonly #timers = new Set<NodeJS.Timeout>()
  #closed: Promise<void> | undefined
  /**
   * Settles once a thread has built its sender (undefined), or with why none
   * could: the first thread's load error, or its exit before it built one
   * (e.g. the module ends its thread as it loads).
   */
  readonly built: Promise<ErrorInfo | undefined>
  #settleBuilt: ((outcome: ErrorInfo | undefined) => void) | undefined

  constructor(
    config: Pick<PipelineConfig, 'sendTimeoutMs'> & {
      readonly sender: NonNullable<PipelineConfig['sender']>
    },
    hand: (thread: SenderThreadPort) => void,
  ) {
    this.shared = {
      module: config.sender.module,
      options: config.sender.options,
      sendTimeoutMs: config.sendTimeoutMs,
      closeChannel: `vinequeue-sender-close-${process.pid}-${Math.random().toString(36).slice(2)}`,
      watchdog: createWatchdogBuffer(),
    }
    this.#hand = hand
    this.built = new Promise((resolve) => {
      this.#settleBuilt = (outcome) => {
        this.#settleBuilt = undefined
        resolve(outcome)
      }
    })
  }

  /** Starts one thread (it loads the sender module at once) and returns the pipeline's end of its channel. */
  start(): SenderThreadPort {
    const { port1, port2 } = new MessageChannel()
    const workerData: SenderThreadData = { ...this.shared, port: port2 }
    const worker = new Worker(new URL('../sender-pool/entry.js', import.meta.url), {
      workerData,
      transferList: [port2],
      name: 'vinequeue-sender',
      execArgv: workerExecArgv(),
    })
    const { threadId } = worker
    const startedAt = performance.now()
    this.#threads.set(threadId, worker)
    // (A failure inside the thread ends it: 'exit' follows; the pipeline sees its port close.)
    worker.on('error', () => {})
    worker.on('message', (msg: SenderThreadStatus) => {
      this.#settleBuilt?.(msg.type === 'built' ? undefined : msg.error)
    })
    worker.once('exit', () => {
      this.#threads.delete(threadId)
      if (this.#settleBuilt) {
        const where = senderModulePath(this.shared.module)
        this.#settleBuilt({
          name: 'SenderLoadError',
          code: ErrorCodes.SENDER_LOAD,
          message: `Sender module ${where}: its thread exited before it built the sender`,
          module: where,
        })
      }
      if (this.#closed) return
      const replace = (): void => {
        if (!this.#closed) this.#hand(this.start())
      }
      if (performance.now() - startedAt >= REPLACE_DELAY_MS) return replace()
      const timer = setTimeout(() => {
        this.#timers.delete(timer)
        replace()
      }, REPLACE_DELAY_MS)
      timer.unref()
      this.#timers.add(timer)
    })
    return { threadId, port: port1 }
  }

  /** Starts `count` more threads and hands each to the pipeline. */
  add(count: number): void {
    for (let i = 0; i < count && !this.#closed; i++) this.#hand(this.start())
  }

  /** Terminates one thread (the pipeline's watchdog found its event loop stuck); it is replaced. */
  terminate(threadId: number): void {
    void this.#threads.get(threadId)?.terminate()
  }

  /** Terminates every thread (none is replaced from now on). Idempotent. */
  close(): Promise<void> {
    if (!this.#closed) {
      for (const t of this.#timers) clearTimeout(t)
      this.#timers.clear()
      this.#closed = Promise.all([...this.#threads.values()].map((w) => w.terminate())).then(() => {})
    }
    return this.#closed
  }
}

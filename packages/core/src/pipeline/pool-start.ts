/**
 * Starting the sender pool, apart from the transport that sends on it
 * (pool-transport.ts): this module imports next to nothing, so that the
 * pipeline thread's entry starts the pool's threads before it loads the
 * rest of its code (they boot on another core meanwhile).
 */
import { createRequire } from 'node:module'
import type { Piscina } from 'piscina'
import type { SenderPoolWorkerData, SenderTask, SenderTaskResult } from '../sender-pool/protocol.ts'
import { createWatchdogBuffer } from '../sender-pool/watchdog.ts'
import { workerExecArgv } from '../worker-exec-argv.ts'
import type { PipelineConfig } from './protocol.ts'

/** The options the sender pool reads (`sender` set: a module sender). */
export type PoolTransportConfig = Pick<
  PipelineConfig,
  'sender' | 'senderThreads' | 'senderConcurrency' | 'sendTimeoutMs'
> & { readonly sender: NonNullable<PipelineConfig['sender']> }

/** A sender pool whose threads are starting. */
export interface StartedPool {
  readonly pool: Piscina
  readonly workerData: SenderPoolWorkerData
  /** The first sender thread's answer to a ping: its sender is built (`pong`), or why not (`loadFailed`). */
  readonly ping: Promise<SenderTaskResult>
}

/** What every sender thread gets: the module and its options, the deadline, the close channel, the watchdog table. */
export function senderPoolWorkerData(config: PoolTransportConfig): SenderPoolWorkerData {
  return {
    module: config.sender.module,
    options: config.sender.options,
    sendTimeoutMs: config.sendTimeoutMs,
    closeChannel: `vinequeue-sender-close-${process.pid}-${Math.random().toString(36).slice(2)}`,
    watchdog: createWatchdogBuffer(),
  }
}

/**
 * Starts the pool's threads (each loads the sender module at once) and pings
 * one. piscina is loaded here, so only for module senders, and as CommonJS:
 * its ES module wrapper only re-exports that build, one module more to load.
 */
export function startSenderPool(
  config: PoolTransportConfig,
  workerData: SenderPoolWorkerData = senderPoolWorkerData(config),
): StartedPool {
  const { Piscina } = createRequire(import.meta.url)('piscina') as typeof import('piscina')
  const pool = new Piscina({
    filename: new URL('../sender-pool/loader.cjs', import.meta.url).href,
    workerData,
    minThreads: config.senderThreads,
    maxThreads: config.senderThreads,
    concurrentTasksPerWorker: config.senderConcurrency,
    idleTimeout: Number.POSITIVE_INFINITY,
    execArgv: workerExecArgv(),
    // Sends are async I/O: a worker parked in Atomics.wait between tasks
    // would stall its own in-flight requests, so tasks come by message.
    atomics: 'disabled',
  })
  const ping = pool.run({ __vq: 1, type: 'ping' } satisfies SenderTask) as Promise<SenderTaskResult>
  ping.catch(() => {}) // (awaited by the transport's ready(); not unhandled if the pool is destroyed first)
  return { pool, workerData, ping }
}

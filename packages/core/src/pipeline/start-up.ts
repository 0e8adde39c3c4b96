import { MetricsWriter } from '../metrics/writer.ts'
import type { OpenedLog } from './log-open.ts'
import type { PipelineToHost, PipelineWorkerData } from './protocol.ts'

/**
 * What the pipeline thread opens before it says `ready`: the files whose
 * failure must reject start() — the dead-letter file and the write-ahead
 * log (its lock, its last segment checked; log-open.ts). They are opened
 * first, and `ready` posted, before the rest of this thread's code (the
 * pipeline, the WAL stage) is loaded: that loads while start() resolves.
 * Producers need the log open, not the code that drains their lanes (note
 * `start.files_first` in packages/bench/README.md).
 */
export interface StartUp {
  /** The queue's counters (this thread is their one writer). */
  readonly metrics: MetricsWriter
  readonly log: OpenedLog | undefined
  /** The dead-letter file, opened for appending (mode 0600). */
  readonly deadLetterFd: number | undefined
}

/** Opens the dead-letter file, then the log; throws what opening either throws (the file is closed again if the log fails). */
export async function openForStart(
  data: PipelineWorkerData,
  post: (msg: PipelineToHost) => void,
): Promise<StartUp> {
  const { config } = data
  const metrics = new MetricsWriter(data.metrics)
  const fs = process.getBuiltinModule('node:fs')
  const deadLetterFd = config.deadLetterFile ? fs.openSync(config.deadLetterFile, 'a', 0o600) : undefined
  try {
    // (The log's code is loaded only with a WAL.)
    const log = config.wal
      ? await (await import('./log-open.ts')).openLog(config.wal, metrics, post)
      : undefined
    return { metrics, log, deadLetterFd }
  } catch (err) {
    if (deadLetterFd !== undefined) fs.closeSync(deadLetterFd)
    throw err
  }
}

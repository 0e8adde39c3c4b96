import { join } from 'node:path'
import {
  QUARANTINE_DIR,
  type WalDamage,
  WalErrorCodes,
  type WalFs,
  type WalReader,
  WriteAheadLog,
} from '@vinequeue/wal'
import { MetricSlot } from '../metrics/layout.ts'
import type { MetricsWriter } from '../metrics/writer.ts'
import type { ErrorInfo, PipelineConfig, PipelineToHost } from './protocol.ts'

/**
 * The write-ahead log as the pipeline thread opens it before `ready`
 * (start-up.ts), with what the queue reports about it from that moment:
 * damage found while opening (an error event each, and the `damage`
 * condition), whether it re-delivers a backlog (`recovering`) and its
 * gauges. The WAL stage (wal-stage.ts) takes it over once the rest of the
 * thread's code has loaded; damage found from then on goes there
 * (`onDamage`).
 */
export interface OpenedLog {
  readonly wal: WriteAheadLog
  /** The log's one reader (what re-delivery and the backlog read through). */
  readonly reader: WalReader
  /** performance.now() when opening began (the `recovered` event's `ms` counts from it). */
  readonly openedAt: number
  /** Damage was found (and reported) while opening. */
  damaged: boolean
  /** Where damage found from now on goes. */
  onDamage: (damage: WalDamage) => void
}

export async function openLog(
  config: NonNullable<PipelineConfig['wal']>,
  metrics: MetricsWriter,
  post: (msg: PipelineToHost) => void,
): Promise<OpenedLog> {
  const openedAt = performance.now()
  const fs: WalFs | undefined = config.fs ? (await import(String(config.fs))).default : undefined
  const log = {
    openedAt,
    damaged: false,
    onDamage: (damage: WalDamage): void => {
      log.damaged = true
      post({ __vq: 1, type: 'wal', event: 'error', error: damageError(damage) })
    },
  }
  const wal = WriteAheadLog.open(config.dir, {
    segmentBytes: config.segmentBytes,
    compression: config.compression,
    encryption: config.encryption,
    // Unlinking a large segment stalls the calling thread for milliseconds
    // (ext4; note `wal.unlink_stall` in packages/bench/README.md): p99 latency.
    deleteInBackground: true,
    onDamage: (d) => log.onDamage(d),
    ...(fs ? { fs } : {}),
  })
  const reader = wal.reader()
  metrics.set(MetricSlot.RECOVERING, reader.behind ? 1 : 0)
  walGauges(metrics, wal, 0)
  if (log.damaged) {
    const reason = damageReason(wal, 0, config.dir)
    post({ __vq: 1, type: 'wal', event: 'condition', condition: 'damage', status: 'degraded', reason })
  }
  return Object.assign(log, { wal, reader })
}

/** The error event a piece of damage is reported as. */
export function damageError(damage: WalDamage): ErrorInfo {
  return {
    name: 'WalError',
    code: WalErrorCodes.DAMAGED,
    message: `write-ahead log damage: ${damage.message}`,
  }
}

/** The `damage` condition's reason: what was found since the start (`skipped`: damaged frames a reader skipped). */
export function damageReason(wal: WriteAheadLog, skipped: number, dir: string): string {
  return `write-ahead log damage found since start: ${wal.gaps} gap(s) in sequence numbers (${wal.gapItems} item(s) missing), ${wal.corruptRegions + skipped} damaged region(s) or frame(s), ${wal.quarantined} piece(s) kept in ${join(dir, QUARANTINE_DIR)} (see vinequeue-wal inspect)`
}

/** The log's gauges in the queue's metrics (`skipped`: damaged frames a reader skipped). */
export function walGauges(metrics: MetricsWriter, wal: WriteAheadLog, skipped: number): void {
  metrics.set(MetricSlot.WAL_SIZE, wal.sizeBytes)
  metrics.set(MetricSlot.WAL_PENDING, wal.pendingItems)
  metrics.set(MetricSlot.WAL_CORRUPT, wal.corruptRegions + skipped)
  metrics.set(MetricSlot.WAL_GAPS, wal.gaps)
  metrics.set(MetricSlot.WAL_QUARANTINED, wal.quarantined)
}

import type { TransferListItem } from 'node:worker_threads'
import { MetricSlot } from '../metrics/layout.ts'
import type { MetricsWriter } from '../metrics/writer.ts'
import type { ItemFailure } from '../sender/types.ts'
import type { Flight } from './flight.ts'
import type { ErrorInfo, PipelineToHost } from './protocol.ts'
import type { AttemptResult, Transport } from './transport.ts'

/**
 * Attempts for an in-thread `send`: the batch goes to the queue's thread as
 * a `send` message (the slab is shared, nothing is copied) and its answer
 * comes back through `result()`. An answer for an attempt that is no longer
 * the batch's current one (or after close) is ignored.
 */
export class HostTransport implements Transport {
  readonly #post: (msg: PipelineToHost, transfer?: TransferListItem[]) => void
  readonly #metrics: MetricsWriter
  readonly #onResult: AttemptResult
  /** Sends awaiting the host's answer, by batch id. */
  readonly #pending = new Map<number, { flight: Flight; startedAt: number; attempt: number }>()

  constructor(
    post: (msg: PipelineToHost, transfer?: TransferListItem[]) => void,
    metrics: MetricsWriter,
    onResult: AttemptResult,
  ) {
    this.#post = post
    this.#metrics = metrics
    this.#onResult = onResult
  }

  send(flight: Flight, startedAt: number): void {
    const slab = flight.slab
    this.#pending.set(flight.id, { flight, startedAt, attempt: flight.attempt })
    this.#post({
      __vq: 1,
      type: 'send',
      batchId: flight.id,
      id: flight.batchId,
      key: flight.batchKey,
      attempt: flight.attempt,
      slab: slab.sab,
      count: slab.count,
      byteLength: slab.bytes,
    })
  }

  /**
   * The host's answer for attempt `attempt` of batch `batchId`. `abandoned`:
   * the send did not settle in time and may still read the slab, so the slab
   * is never reused (tainted) and the attempt counts as a timeout.
   */
  result(
    batchId: number,
    attempt: number,
    failed?: readonly ItemFailure[],
    error?: ErrorInfo,
    abandoned?: boolean,
  ): void {
    const pending = this.#pending.get(batchId)
    if (!pending || pending.attempt !== attempt) return
    this.#pending.delete(batchId)
    if (abandoned) {
      pending.flight.slab.tainted = true
      this.#metrics.add(MetricSlot.TIMEOUTS, 1)
    }
    this.#onResult(pending.flight, pending.startedAt, failed, error)
  }

  close(): Promise<ErrorInfo[]> {
    this.#pending.clear()
    return Promise.resolve([])
  }
}

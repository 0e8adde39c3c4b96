import type { ItemFailure } from '../sender/types.ts'
import type { Flight } from './flight.ts'
import type { ErrorInfo } from './protocol.ts'

/**
 * An attempt's answer: `failed` items (the rest delivered) or `error` for
 * the whole batch; neither: all delivered. `startedAt` is the value given to
 * `Transport.send` (performance.now()).
 */
export type AttemptResult = (
  flight: Flight,
  startedAt: number,
  failed: readonly ItemFailure[] | undefined,
  error: ErrorInfo | undefined,
) => void

/**
 * Where a batch's attempt runs: the sender pool (module senders, see
 * pool-transport.ts) or the queue's own thread (an in-thread `send`, see
 * host-transport.ts). A transport only carries attempts and reports each
 * answer at most once, through the `AttemptResult` it was built with; what
 * an answer means is the dispatcher's business (including one that arrives
 * after `close()`: the pool's shutdown fails the sends it cuts short).
 */
export interface Transport {
  /** Starts one attempt of the batch (its `attempt` already counted; its records in `flight.slab`). */
  send(flight: Flight, startedAt: number): void
  /**
   * Stops carrying attempts (pending ones are never answered) and releases
   * the transport's threads, waiting at most `closeTimeoutMs` for senders to
   * close; resolves with the errors their close() threw. Idempotent.
   */
  close(closeTimeoutMs: number): Promise<ErrorInfo[]>
}

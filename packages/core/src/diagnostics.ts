import diagnosticsChannel from 'node:diagnostics_channel'

/**
 * Namespaced diagnostics channels, published on the thread that created the
 * queue. Subscribe with `diagnostics_channel.subscribe(name, fn)`.
 */
export const channels: {
  readonly start: diagnosticsChannel.Channel
  readonly stop: diagnosticsChannel.Channel
  readonly down: diagnosticsChannel.Channel
  readonly backpressure: diagnosticsChannel.Channel
  readonly deadLetter: diagnosticsChannel.Channel
  readonly send: diagnosticsChannel.Channel
  readonly circuit: diagnosticsChannel.Channel
} = Object.freeze({
  /** `{ queue }` after start() resolved. */
  start: diagnosticsChannel.channel('vinequeue:queue:start'),
  /** `{ queue, report }` after stop() resolved. */
  stop: diagnosticsChannel.channel('vinequeue:queue:stop'),
  /** `{ queue, error }` when the pipeline thread died. */
  down: diagnosticsChannel.channel('vinequeue:queue:down'),
  /** `{ queue, active }` when a lane crosses the soft limit. */
  backpressure: diagnosticsChannel.channel('vinequeue:backpressure'),
  /** `{ queue, count, reason, attempts }` when items are dead-lettered. */
  deadLetter: diagnosticsChannel.channel('vinequeue:dead-letter'),
  /** `{ queue, batchId, count, attempt }` before an in-thread send (`batchId`: the batch's `batch.id`). */
  send: diagnosticsChannel.channel('vinequeue:batch:send'),
  /** `{ queue, state }` when the sender's circuit breaker changes state. */
  circuit: diagnosticsChannel.channel('vinequeue:circuit'),
})

/**
 * The no-op sender module, loaded by the queue's sender pool: acknowledges
 * every batch without reading it, so end-to-end figures measure the queue
 * (encode, ring, pipeline, pool hand-off) and nothing else.
 */
import { defineSender, type SenderFactory } from '@vinequeue/core/sender'

const noopSender: SenderFactory = defineSender(() => ({
  async send() {
    return undefined
  },
}))

export default noopSender

import { createHash } from 'node:crypto'
import type { KafkaMessage } from './messages.ts'

/**
 * The producer state a failed idempotent request was sent under, as the
 * client reports it (`error.idempotentState`, added by this repository's
 * patch of @platformatic/kafka: patches/, UPSTREAM.md).
 */
interface IdempotentState {
  readonly producerId: bigint
  readonly producerEpoch: number
  /** `topic:partition` → the next sequence number the client would have assigned. */
  readonly nextSequences: ReadonlyMap<string, number>
  /** `topic:partition` → the first sequence number of the failed request's records there. */
  readonly requestSequences: ReadonlyMap<string, number>
}

export interface Resend {
  /** The partition of each message, as in the failed send. */
  readonly partitions: number[]
  /** The state to restore: each resent partition's sequence number back to its first one. */
  readonly state: {
    producerId: bigint
    producerEpoch: number
    nextSequences: Map<string, number>
  }
}

/**
 * A failed idempotent send whose records may have been written (the client
 * gave up without knowing: no answer in time, connection lost, retries
 * exhausted), kept so that the queue's retry of the same records goes out
 * under the same producer id, epoch and sequence numbers: the broker then
 * acknowledges the ones it already holds without writing them again.
 *
 * Only the send that immediately follows can use it (the sender sends one
 * batch at a time when idempotent): any other request under that producer
 * id would take the sequence numbers the retry needs. So the retry must be
 * the next batch the sender gets — which the queue guarantees with
 * `maxInFlightBatches: 1` — else the sender falls back to a new producer id.
 */
export class PendingResend {
  readonly #topic: string
  readonly #state: IdempotentState
  /** Each message of the failed send, in order: its content digest and partition. */
  readonly #entries: ReadonlyArray<{ digest: string; partition: number }>

  private constructor(
    topic: string,
    state: IdempotentState,
    entries: Array<{ digest: string; partition: number }>,
  ) {
    this.#topic = topic
    this.#state = state
    this.#entries = entries
  }

  /** What `err` (a failed send of `messages` to `topic`) leaves to resend, if anything. */
  static from(err: unknown, topic: string, messages: readonly KafkaMessage[]): PendingResend | undefined {
    const state = (err as { idempotentState?: IdempotentState } | null)?.idempotentState
    if (!state || !(state.requestSequences instanceof Map) || !(state.nextSequences instanceof Map))
      return undefined
    return new PendingResend(
      topic,
      state,
      messages.map((m) => ({ digest: digest(m), partition: m.partition })),
    )
  }

  /**
   * When `messages` are exactly the records of some of the failed send's
   * partitions, all of each, in their order — the queue's retry of the whole
   * batch, or of the items of the partitions that failed — the partition of
   * each and the producer state to restore. Otherwise undefined.
   */
  match(messages: readonly KafkaMessage[]): Resend | undefined {
    const partitions: number[] = []
    const included = new Set<number>()
    const excluded = new Set<number>()
    let j = 0
    for (const e of this.#entries) {
      if (j < messages.length && digest(messages[j]!) === e.digest) {
        partitions.push(e.partition)
        included.add(e.partition)
        j++
      } else {
        excluded.add(e.partition)
      }
    }
    if (j !== messages.length || messages.length === 0) return undefined
    for (const p of included) if (excluded.has(p)) return undefined
    const nextSequences = new Map(this.#state.nextSequences)
    for (const p of included) {
      const key = `${this.#topic}:${p}`
      const first = this.#state.requestSequences.get(key)
      if (first === undefined) return undefined
      nextSequences.set(key, first)
    }
    return {
      partitions,
      state: { producerId: this.#state.producerId, producerEpoch: this.#state.producerEpoch, nextSequences },
    }
  }
}

function digest(m: KafkaMessage): string {
  const h = createHash('sha1')
  const key = m.key ?? null
  // Length-prefixed key, then the value: no two (key, value) pairs share an input.
  h.update(key === null ? 'n' : `k${key.length}:`)
  if (key !== null) h.update(key)
  if (m.value) h.update(m.value)
  return h.digest('base64')
}

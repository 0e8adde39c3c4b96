import { protocolErrors, protocolErrorsCodesById, TimeoutError } from '@platformatic/kafka'
import type { ItemFailure } from '@vinequeue/core/sender'
import type { KafkaMessage } from './messages.ts'

/**
 * Turns what @platformatic/kafka threw into the queue's terms.
 *
 * The client marks each of its errors with `canRetry` (protocol errors take
 * it from Kafka's own table: NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT,
 * NOT_ENOUGH_REPLICAS… are retriable; MESSAGE_TOO_LARGE, INVALID_RECORD,
 * TOPIC_AUTHORIZATION_FAILED… are not) and wraps them in `MultipleErrors`
 * trees. Like the client's own retry loop, a failure is retryable unless
 * some error in the tree says `canRetry: false` — with one exception:
 * `TimeoutError` (no answer in time) is marked not retriable by the client
 * (retrying inside it could duplicate), but for the queue a timeout means
 * "outcome unknown", and retrying is what at-least-once delivery needs.
 *
 * A failed Produce response tells which partitions failed (and, for records
 * that failed broker validation, which records): those are reported per
 * item, so the records of partitions that succeeded are not sent twice.
 */

export interface Classified {
  readonly retryable: boolean
  /** A Kafka error code, when one is behind the failure. */
  readonly status: number | undefined
  readonly reason: string
}

interface PartitionOutcome {
  readonly ok: boolean
  readonly code: number
  readonly reason: string
  /** Positions (in the partition's record batch) of records the broker named as invalid. */
  readonly badRecords: readonly number[]
}

/** Name and description of a Kafka error code. */
export function describeCode(code: number, serverMessage?: string | null): string {
  const id = protocolErrorsCodesById[code]
  const name = id ? `${id} (${code})` : `Kafka error ${code}`
  return serverMessage ? `${name}: ${serverMessage}` : name
}

export function canRetryCode(code: number): boolean {
  const id = protocolErrorsCodesById[code]
  return id !== undefined && protocolErrors[id]?.canRetry === true
}

/** Every error in a client error tree (MultipleErrors nest; causes chain), depth first. */
function* walk(err: unknown, seen: Set<unknown> = new Set()): Generator<any> {
  if (typeof err !== 'object' || err === null || seen.has(err)) return
  seen.add(err)
  yield err
  const children = (err as { errors?: unknown }).errors
  if (Array.isArray(children)) for (const child of children) yield* walk(child, seen)
  yield* walk((err as { cause?: unknown }).cause, seen)
}

export function classify(err: unknown): Classified {
  let retryable = true
  let status: number | undefined
  const reasons: string[] = []
  for (const e of walk(err)) {
    // An AuthenticationError hides under a retriable "Connection failed"
    // NetworkError: causes count too.
    if (e.canRetry === false && !(e instanceof TimeoutError)) retryable = false
    const code = typeof e.apiCode === 'number' && e.apiCode !== 0 ? e.apiCode : undefined
    if (code !== undefined && status === undefined) status = code
    const reason = code !== undefined ? describeCode(code, e.serverErrorMessage) : String(e.message ?? e)
    if (!reasons.includes(reason)) reasons.push(reason)
  }
  return { retryable, status, reason: reasons.join(' → ') }
}

/**
 * Per-partition outcome of a failed send of `topic`, from the Produce
 * responses inside the error tree and the offsets the client reports for the
 * requests that succeeded. A partition that succeeded in any attempt counts
 * as written (a later failure of the same records cannot unwrite them).
 * Undefined when the error says nothing about any partition (connection
 * refused, metadata failure, …).
 */
function partitionOutcomes(err: unknown, topic: string): Map<number, PartitionOutcome> | undefined {
  const out = new Map<number, PartitionOutcome>()
  const produced = (err as { produced?: { offsets?: Array<{ topic: string; partition: number }> } }).produced
  for (const { topic: t, partition } of produced?.offsets ?? []) {
    if (t === topic) out.set(partition, { ok: true, code: 0, reason: '', badRecords: [] })
  }
  for (const e of walk(err)) {
    const responses = e.response?.responses
    if (!Array.isArray(responses)) continue
    for (const r of responses) {
      if (r?.name !== topic || !Array.isArray(r.partitionResponses)) continue
      for (const p of r.partitionResponses) {
        if (out.get(p.index)?.ok) continue
        out.set(p.index, {
          ok: p.errorCode === 0,
          code: p.errorCode,
          reason: describeCode(p.errorCode, p.errorMessage),
          badRecords: (p.recordErrors ?? []).map((x: { batchIndex: number }) => x.batchIndex),
        })
      }
    }
  }
  return out.size > 0 ? out : undefined
}

/**
 * The items of `messages` that were not written, each with its own
 * classification, or undefined when only the whole batch can be failed.
 */
export function itemFailures(
  err: unknown,
  topic: string,
  messages: readonly KafkaMessage[],
  itemOf: readonly number[],
  general: Classified,
): ItemFailure[] | undefined {
  const outcomes = partitionOutcomes(err, topic)
  if (!outcomes) return undefined
  const failed: ItemFailure[] = []
  // Position of each message within its partition's record batch: the client
  // keeps the order of `messages` inside a partition (record_errors use it).
  const position = new Map<number, number>()
  for (let m = 0; m < messages.length; m++) {
    const partition = messages[m]!.partition
    const at = position.get(partition) ?? 0
    position.set(partition, at + 1)
    const o = outcomes.get(partition)
    const index = itemOf[m]!
    if (o === undefined) {
      // Its request failed without a response (connection lost, timeout…).
      failed.push({ index, retryable: general.retryable, status: general.status, reason: general.reason })
    } else if (o.ok) {
      // written
    } else if (o.badRecords.length > 0) {
      // Kafka rejected the whole partition batch for the records it names;
      // the others were fine and go again without them.
      const bad = o.badRecords.includes(at)
      failed.push({
        index,
        retryable: !bad,
        status: o.code,
        reason: bad
          ? `record rejected by the broker: ${o.reason}`
          : `not written: another record of its partition batch was rejected (${o.reason})`,
      })
    } else {
      failed.push({ index, retryable: canRetryCode(o.code), status: o.code, reason: o.reason })
    }
  }
  return failed
}

import { describe, expect, it } from 'vitest'
import { PendingResend } from '../src/kafka/idempotent-resend.ts'
import type { KafkaMessage } from '../src/kafka/messages.ts'

// Which retried records may reuse a failed idempotent request's sequence
// numbers: exactly the records of some of its partitions, all of each, in
// their order. Anything else would hand the broker numbers that no longer
// describe the same records.
const topic = 't'
const msg = (value: string, partition: number, key?: string): KafkaMessage => ({
  topic,
  partition,
  value: Buffer.from(value),
  ...(key === undefined ? {} : { key: Buffer.from(key) }),
})

// A request of 5 records over partitions 0 (a, c), 1 (b, e) and 2 (d), sent
// with first sequence numbers 10, 20 and 30.
const failed = [msg('a', 0, 'x'), msg('b', 1), msg('c', 0, 'x'), msg('d', 2), msg('e', 1)]
const error = {
  idempotentState: {
    producerId: 7n,
    producerEpoch: 0,
    nextSequences: new Map([
      ['t:0', 12],
      ['t:1', 22],
      ['t:2', 31],
      ['t:3', 5],
    ]),
    requestSequences: new Map([
      ['t:0', 10],
      ['t:1', 20],
      ['t:2', 30],
    ]),
  },
}
const pending = PendingResend.from(error, topic, failed)!
// The retry's messages, as the sender builds them: no partition chosen yet.
const retry = (...values: Array<[string, string?]>): KafkaMessage[] => values.map(([v, k]) => msg(v, -1, k))

describe('PendingResend', () => {
  it('nothing to resend without the producer state on the error', () => {
    expect(PendingResend.from(new Error('x'), topic, failed)).toBeUndefined()
    expect(PendingResend.from(undefined, topic, failed)).toBeUndefined()
  })

  it('the whole request again: same partitions, every partition back to its first sequence number', () => {
    const r = pending.match(retry(['a', 'x'], ['b'], ['c', 'x'], ['d'], ['e']))!
    expect(r.partitions).toEqual([0, 1, 0, 2, 1])
    expect(r.state.producerId).toBe(7n)
    expect(r.state.producerEpoch).toBe(0)
    expect([...r.state.nextSequences]).toEqual([
      ['t:0', 10],
      ['t:1', 20],
      ['t:2', 30],
      ['t:3', 5],
    ])
  })

  it('the records of the partitions that failed only: the others keep their next numbers', () => {
    const r = pending.match(retry(['b'], ['d'], ['e']))!
    expect(r.partitions).toEqual([1, 2, 1])
    expect(r.state.nextSequences.get('t:0')).toBe(12)
    expect(r.state.nextSequences.get('t:1')).toBe(20)
    expect(r.state.nextSequences.get('t:2')).toBe(30)
  })

  it.each([
    ['part of a partition', retry(['b'])],
    ['another order', retry(['c', 'x'], ['a', 'x'], ['b'], ['d'], ['e'])],
    ['another key', retry(['a', 'y'], ['b'], ['c', 'x'], ['d'], ['e'])],
    ['a key where there was none', retry(['d', ''])],
    ['another record added', retry(['d'], ['f'])],
    ['nothing', retry()],
  ])('no reuse for %s', (_name, messages) => {
    expect(pending.match(messages)).toBeUndefined()
  })
})

import { createQueue, InvalidConfigError, presets, type QueueOptions } from '@vinequeue/core'
import { describe, expect, it } from 'vitest'

const send = async (): Promise<undefined> => undefined

function issuesOf(options: unknown): string[] {
  try {
    createQueue(options as QueueOptions)
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidConfigError)
    return [...((err as InvalidConfigError).issues ?? [])]
  }
  throw new Error('expected InvalidConfigError')
}

describe('options', () => {
  it('accepts the defaults with a sender and resolves the default preset', () => {
    const q = createQueue({ send })
    expect(q.options.maxBatchSize).toBe(1000)
    expect(q.options.flushIntervalMs).toBe(5000)
    expect(q.options.softLimit).toBe(0.8)
    expect(q.options.hardLimit).toBe(0.95)
    expect(q.options.fullPolicy).toBe('block')
    expect(q.options.maxInFlightBatches).toBeGreaterThanOrEqual(2)
    expect(Object.isFrozen(q.options)).toBe(true)
  })

  it('applies presets and lets explicit options override them', () => {
    const ht = createQueue({ send, preset: 'highThroughput' })
    expect(ht.options.maxBatchSize).toBe(presets.highThroughput.maxBatchSize)
    expect(ht.options.adaptiveBatching).not.toBe(false)
    const ll = createQueue({ send, preset: 'lowLatency', flushIntervalMs: 2 })
    expect(ll.options.maxBatchSize).toBe(100)
    expect(ll.options.flushIntervalMs).toBe(2)
  })

  it('skips undefined values', () => {
    const q = createQueue({ send, maxBatchSize: undefined })
    expect(q.options.maxBatchSize).toBe(1000)
  })

  it('requires exactly one sender form', () => {
    expect(issuesOf({})).toEqual([expect.stringMatching(/^send\/sender: a sender is required/)])
    expect(issuesOf({ send, sender: { module: 'x' } })).toEqual([expect.stringMatching(/exactly one/)])
  })

  // One case per option: the field name and the reason must be reported.
  const invalid: Array<[string, unknown]> = [
    ['maxBatchSize', 0],
    ['maxBatchSize', 1.5],
    ['maxBatchSize', '10'],
    ['maxBatchBytes', 10],
    ['flushIntervalMs', -1],
    ['ringBytes', 100],
    ['ringBytes', 2 ** 31],
    ['maxItemBytes', 0],
    ['softLimit', 0],
    ['softLimit', 2],
    ['hardLimit', Number.NaN],
    ['fullPolicy', 'spill-to-mars'],
    ['maxBlockMs', -5],
    ['maxBackoffMs', 1e9],
    ['senderThreads', 0],
    ['senderConcurrency', 0],
    ['maxInFlightBatches', 0],
    ['sendTimeoutMs', 0],
    ['maxAttempts', 0],
    ['retryInitialDelayMs', -1],
    ['retryMaxDelayMs', 'soon'],
    ['adaptiveBatching', 'yes'],
    ['adaptiveBatching', { minBatchSize: 0 }],
    ['adaptiveConcurrency', 'yes'],
    ['adaptiveConcurrency', { initialConcurrency: 0 }],
    ['adaptiveConcurrency', { decreaseRatio: 1 }],
    ['adaptiveConcurrency', { ewmaAlpha: 0 }],
    ['adaptiveConcurrency', { rttDeviationScale: -1 }],
    ['adaptiveConcurrency', { slowStart: true }],
    ['onDeadLetter', 42],
    ['send', 42],
    ['preset', 'turbo'],
    ['bogusOption', 1],
  ]
  it.each(invalid)('rejects %s = %o naming the field', (key, value) => {
    const options = key === 'send' ? { [key]: value } : { send, [key]: value }
    const issues = issuesOf(options)
    expect(issues.some((i) => i.startsWith(key))).toBe(true)
  })

  it('reports every bad field at once', () => {
    const issues = issuesOf({ send, maxBatchSize: 0, softLimit: 5, fullPolicy: 'x', sendTimeoutMs: -1 })
    expect(issues).toHaveLength(4)
    try {
      createQueue({ send, maxBatchSize: 0, softLimit: 5 } as QueueOptions)
    } catch (err) {
      expect((err as Error).message).toMatch(/maxBatchSize/)
      expect((err as Error).message).toMatch(/softLimit/)
    }
  })

  it('rejects a softLimit above the hardLimit and an item that cannot fit the ring', () => {
    expect(issuesOf({ send, softLimit: 0.9, hardLimit: 0.5 })).toEqual([expect.stringMatching(/^softLimit/)])
    expect(issuesOf({ send, ringBytes: 4096, maxItemBytes: 4000 })).toEqual([
      expect.stringMatching(/^maxItemBytes/),
    ])
  })

  it('rejects sender options that cannot be cloned to a thread', () => {
    const issues = issuesOf({ sender: { module: 'x', options: { fn: () => 1 } } })
    expect(issues).toEqual([expect.stringMatching(/^sender.options/)])
  })
})

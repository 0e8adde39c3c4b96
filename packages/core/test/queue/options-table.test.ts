/**
 * The options table is the one source of the validation, the known keys, the
 * defaults and the pipeline thread's config keys.
 */
import { createQueue, InvalidConfigError, type QueueOptions } from '@vinequeue/core'
import { DEFAULT_SEGMENT_BYTES } from '@vinequeue/wal'
import { describe, expect, it } from 'vitest'
import {
  ADAPTIVE_BATCHING_OPTIONS,
  ADAPTIVE_CONCURRENCY_OPTIONS,
  CIRCUIT_BREAKER_OPTIONS,
  PIPELINE_OPTION_KEYS,
  QUEUE_OPTIONS,
} from '../../src/queue/option-table.ts'
import { kDefaultOptions, resolveOptions } from '../../src/queue/options.ts'

const send = async (): Promise<void> => {}

function issuesOf(options: unknown): string[] {
  try {
    createQueue(options as QueueOptions)
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidConfigError)
    return [...((err as InvalidConfigError).issues ?? [])]
  }
  return []
}

describe('the options table', () => {
  it('every resolved option not filled by the preset is its row default', () => {
    const resolved = resolveOptions({ send }) as unknown as Record<string, unknown>
    const presetFilled = new Set(['maxBatchSize', 'maxBatchBytes', 'flushIntervalMs', 'ringBytes'])
    for (const [key, value] of Object.entries(kDefaultOptions)) {
      if (presetFilled.has(key) || key === 'circuitBreaker') continue
      expect(resolved[key], key).toEqual(value)
    }
    expect(resolveOptions({ send, circuitBreaker: true }).circuitBreaker).toEqual(
      Object.fromEntries(Object.entries(CIRCUIT_BREAKER_OPTIONS).map(([k, row]) => [k, row.default])),
    )
    expect(resolveOptions({ send, adaptiveBatching: true }).adaptiveBatching).toEqual(
      Object.fromEntries(Object.entries(ADAPTIVE_BATCHING_OPTIONS).map(([k, row]) => [k, row.default])),
    )
    expect(resolveOptions({ send, adaptiveConcurrency: true }).adaptiveConcurrency).toEqual(
      Object.fromEntries(Object.entries(ADAPTIVE_CONCURRENCY_OPTIONS).map(([k, row]) => [k, row.default])),
    )
  })

  it("the WAL's segment size default is the log's own", () => {
    expect(resolveOptions({ send, wal: { dir: '/tmp/x' } }).wal?.segmentBytes).toBe(DEFAULT_SEGMENT_BYTES)
  })

  it('the pipeline config keys are the rows marked pipeline, and all of them are cloneable', () => {
    expect([...PIPELINE_OPTION_KEYS].sort()).toEqual(
      Object.entries(QUEUE_OPTIONS)
        .filter(([, row]) => row.pipeline)
        .map(([key]) => key)
        .sort(),
    )
    const resolved = resolveOptions({ send, onDeadLetter: () => {}, wal: { dir: '/tmp/x' } })
    const config = Object.fromEntries(PIPELINE_OPTION_KEYS.map((k) => [k, resolved[k]]))
    expect(() => structuredClone(config)).not.toThrow()
    expect(PIPELINE_OPTION_KEYS).not.toContain('send')
    expect(PIPELINE_OPTION_KEYS).not.toContain('onDeadLetter')
  })

  it('unknown keys are refused in every options object, all in one InvalidConfigError', () => {
    expect(
      issuesOf({
        send,
        colour: 1,
        adaptiveBatching: { x: 1 },
        adaptiveConcurrency: { x: 1 },
        circuitBreaker: { x: 1 },
        wal: { dir: '/tmp/x', x: 1, encryption: { keyId: 1, keys: { 1: new Uint8Array(32) }, x: 1 } },
      }),
    ).toEqual([
      'colour: unknown option',
      'wal.x: unknown option',
      'wal.encryption.x: unknown option',
      'circuitBreaker.x: unknown option',
      'adaptiveBatching.x: unknown option',
      'adaptiveConcurrency.x: unknown option',
    ])
    expect(issuesOf({ sender: { module: 'data:text/javascript,', x: 1 } })).toEqual([
      'sender.x: unknown option',
    ])
  })

  it('each check of a nested table reports its key with its path', () => {
    expect(
      issuesOf({
        send,
        circuitBreaker: { windowMs: 0, failureRateThreshold: 2, whileOpen: 'drop' },
        adaptiveConcurrency: { decreaseRatio: 1, rttDeviationScale: Number.NaN },
        wal: { dir: '/tmp/x', syncMode: 'sometimes', segmentBytes: 10 },
      }),
    ).toEqual([
      'wal.syncMode: must be one of always, periodic, none (got "sometimes")',
      'wal.segmentBytes: must be an integer ≥ 4096 (got 10)',
      'circuitBreaker.failureRateThreshold: must be a number in (0, 1] (got 2)',
      'circuitBreaker.windowMs: must be an integer ≥ 1 (got 0)',
      'circuitBreaker.whileOpen: must be one of accept, reject (got "drop")',
      'adaptiveConcurrency.decreaseRatio: must be a number in (0, 1) (got 1)',
      'adaptiveConcurrency.rttDeviationScale: must be a finite number >= 0 (got NaN)',
    ])
  })
})

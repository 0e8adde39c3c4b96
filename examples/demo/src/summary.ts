import type { CircuitState, Metrics } from '@vinequeue/core'
import type { Flags } from './flags.ts'
import { compact, int, mib, seconds } from './format.ts'
import type { SinkReport } from './sink/host.ts'
import type { Verification } from './verify.ts'

export interface RunFacts {
  readonly flags: Flags
  readonly producers: number
  readonly verification: Verification
  readonly deadLetters: number
  readonly undelivered: number
  readonly metrics: Metrics
  readonly sink: SinkReport
  /** The circuit's states, in order (from closed). */
  readonly circuit: readonly CircuitState[]
  readonly peak: { walItems: number; walBytes: number }
  readonly produceMs: number
  readonly totalMs: number
}

/**
 * Prints the final summary and returns the verdict: every event stored by
 * the sink, none corrupted, none dead-lettered (duplicates are allowed:
 * delivery is at-least-once).
 */
export function printSummary(f: RunFacts): boolean {
  const v = f.verification
  const m = f.metrics
  const o = f.sink.outage
  const deadLetters = Math.max(f.deadLetters, m.deadLetteredTotal)
  const rows: Array<[string, string, string?]> = [
    ['events sent', int(v.expected), `by ${f.producers} producers in ${seconds(f.produceMs)}`],
    ['stored by the sink', int(v.unique), 'distinct ids'],
    [
      'missing',
      int(v.missing),
      v.missingIds.length > 0 ? `first ids: ${v.missingIds.join(', ')}` : undefined,
    ],
    [
      'corrupted',
      int(v.corrupted),
      `checksum of what the sink got vs the event as produced (checked in ${seconds(v.ms)})`,
    ],
    [
      'duplicates',
      int(v.duplicates),
      v.duplicates > 0
        ? 'extra copies of batches stored before their answer was lost (at-least-once)'
        : 'at-least-once: possible only from batches in flight when the sink failed',
    ],
    ['dead letters', int(deadLetters), undefined],
    ['undelivered at stop', int(f.undelivered), undefined],
  ]
  if (!o) {
    rows.push([
      'sink outage',
      'none',
      f.flags.outageMs > 0 ? 'the run ended before it was due' : '--outage-ms 0',
    ])
  } else if (Number.isNaN(o.upAt)) {
    rows.push([
      'sink outage',
      '—',
      'it began after the last event was stored: the run was too short to feel it',
    ])
  } else {
    rows.push(
      [
        'sink outage',
        seconds(o.upAt - o.downAt),
        `503 for ${seconds(o.refusingAt - o.downAt)}, then refusing connections for ${seconds(o.upAt - o.refusingAt)}`,
      ],
      [
        'delivering again',
        Number.isNaN(o.firstStoredAfterUpAt) ? '—' : seconds(o.firstStoredAfterUpAt - o.upAt),
        'after the sink came back',
      ],
    )
  }
  rows.push(
    [
      'circuit',
      `${int(m.circuitTransitionsTotal)} changes`,
      f.circuit.length > 0 ? `closed → ${f.circuit.join(' → ')}` : undefined,
    ],
    ['requests to the sink', int(f.sink.requests), `${int(f.sink.rejected)} answered 503`],
    [
      'send attempts failed',
      int(m.errorsTotal),
      `${int(m.retriesTotal)} retries, ${int(m.circuitProbesTotal)} probes`,
    ],
    [
      'WAL backlog, max',
      int(f.peak.walItems),
      `items in the log not acknowledged yet (${mib(f.peak.walBytes)} on disk), sampled every 250 ms`,
    ],
    [
      'spilled to the WAL',
      int(m.walSpilledTotal),
      'items kept only on disk while memory was full, read back later',
    ],
    ['fsyncs', int(m.fsyncsTotal), `p99 ${m.walSyncLatencyP99.toFixed(1)} ms`],
    ['throughput', `${compact((v.expected * 1000) / f.totalMs)}/s`, `all delivered in ${seconds(f.totalMs)}`],
  )
  const left = Math.max(...rows.map(([k]) => k.length))
  const mid = Math.max(...rows.map(([, n]) => n.length))
  console.log('\nsummary')
  for (const [k, n, note] of rows)
    console.log(`  ${k.padEnd(left)}  ${n.padStart(mid)}${note ? `  ${note}` : ''}`)

  const ok = v.missing === 0 && v.corrupted === 0 && deadLetters === 0 && f.undelivered === 0
  console.log(
    ok
      ? `\nOK: all ${int(v.expected)} events arrived, exactly as sent${v.duplicates > 0 ? ` (plus ${int(v.duplicates)} duplicate copies)` : ''}`
      : `\nFAILED: ${int(v.missing)} missing, ${int(v.corrupted)} corrupted, ${int(deadLetters)} dead letters, ${int(f.undelivered)} undelivered`,
  )
  return ok
}

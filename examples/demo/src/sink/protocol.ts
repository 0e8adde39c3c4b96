/**
 * Messages between the demo (parent) and its sink (a child process, over the
 * IPC channel of `child_process.fork` with `serialization: 'advanced'`, so
 * typed arrays travel as they are). Every message carries the brand `__sink`.
 */
import type { LedgerSnapshot } from './ledger.ts'

/** What the sink answers: `up` stores and answers 204, `errors` answers 503, `refusing` has no listener. */
export type SinkPhase = 'up' | 'errors' | 'refusing'

/** An outage the sink runs by itself once it has stored `afterItems` distinct events. */
export interface OutagePlan {
  readonly afterItems: number
  /** Answer 503 to every request for this long (ms)… */
  readonly errorMs: number
  /** …then close the listener and every connection, refusing new ones, for this long (ms). */
  readonly refuseMs: number
}

/** When the outage happened, on the sink's clock (ms since it started); NaN: not (yet). */
export interface OutageTimes {
  readonly downAt: number
  readonly refusingAt: number
  readonly upAt: number
  /** First request stored after it came back (NaN if none came). */
  readonly firstStoredAfterUpAt: number
}

export type ParentToSink =
  | { readonly __sink: 1; readonly type: 'outage'; readonly plan: OutagePlan }
  | { readonly __sink: 1; readonly type: 'report' }

export type SinkToParent =
  | { readonly __sink: 1; readonly type: 'listening'; readonly port: number; readonly node: string }
  | { readonly __sink: 1; readonly type: 'phase'; readonly phase: SinkPhase }
  | { readonly __sink: 1; readonly type: 'stats'; readonly unique: number; readonly received: number }
  | {
      readonly __sink: 1
      readonly type: 'report'
      readonly ledger: LedgerSnapshot
      readonly outage: OutageTimes | undefined
      readonly requests: number
      readonly rejected: number
    }
  | { readonly __sink: 1; readonly type: 'failed'; readonly message: string }

import type { Slab } from './slab-pool.ts'

/**
 * One batch between its cut and its settlement: what the pipeline and the
 * dispatcher know of it besides its records, which stay in `slab` (shared,
 * so a sender thread reads them in place and the host finds them if the
 * pipeline thread dies). Plain data on the pipeline thread only.
 */
export interface Flight {
  /** Cut id: batches are cut, logged and answered in id order. */
  readonly id: number
  readonly slab: Slab
  /** Attempts started so far. */
  attempt: number
  /** performance.now() of the first attempt (for maxRetryAgeMs); 0 before it. */
  firstSentAt: number
  /** An attempt failed; the batch waits for (or is in) a retry. */
  retrying: boolean
  /** The current attempt is a half-open circuit probe. */
  probe: boolean
  /** WAL: sequence number of the batch's first item; undefined while the WAL does not hold it. */
  walSeq: number | undefined
}

/** A batch just cut (or read back from the WAL at `walSeq`). */
export function newFlight(id: number, slab: Slab, walSeq?: number): Flight {
  return { id, slab, attempt: 0, firstSentAt: 0, retrying: false, probe: false, walSeq }
}

import type { Slab } from './slab-pool.ts'

/**
 * One batch between its cut and its settlement: what the pipeline and the
 * dispatcher know of it besides its records, which stay in `slab` (shared,
 * so a sender thread reads them in place and the host finds them if the
 * pipeline thread dies). Plain data on the pipeline thread only.
 */
export interface Flight {
  /** Cut id: batches are cut, logged and answered in id order. Internal; senders see `batchId`. */
  readonly id: number
  /**
   * The sender's `batch.id`: the WAL sequence number of the batch's first
   * item when the log holds it (≥ 0: the same after a restart re-reads it),
   * else minus the cut id (< 0, so never equal to a log-derived one). Fixed
   * at the cut: a partial retry, or dropOldest clearing `walSeq`, keeps it.
   */
  readonly batchId: number
  /** The sender's `batch.key`: `<scope>:<batchId>`, scope the log's id or (not logged) the run's. */
  readonly batchKey: string
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

/**
 * A batch just cut (or read back from the WAL at `walSeq`). `scope`: the
 * log's id for a batch the log holds, else the pipeline run's random id.
 */
export function newFlight(id: number, slab: Slab, walSeq?: number, scope = ''): Flight {
  const batchId = walSeq ?? -id
  return {
    id,
    batchId,
    batchKey: `${scope}:${batchId}`,
    slab,
    attempt: 0,
    firstSentAt: 0,
    retrying: false,
    probe: false,
    walSeq,
  }
}

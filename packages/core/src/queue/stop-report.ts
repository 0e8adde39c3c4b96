import { concatBatches, decodeItemsLenient } from '../batch/batch-format.ts'
import { SLAB_HEADER_BYTES, SlabSlot, SlabState } from '../pipeline/slab-pool.ts'
import { LaneReader } from '../ring/lane-reader.ts'
import type { StopReport } from './types.ts'

/**
 * Reads what is left once no pipeline thread runs: every lane's records
 * and, after a crash, the batches in slabs that were filling or in flight.
 */
export function collectLeftovers(
  lanes: readonly SharedArrayBuffer[],
  slabs: readonly SharedArrayBuffer[],
): { bytes: Uint8Array; count: number } {
  const parts: Uint8Array[] = []
  let count = 0
  for (const sab of slabs) {
    const header = new Int32Array(sab, 0, 4)
    if (Atomics.load(header, SlabSlot.STATE) === SlabState.FREE) continue
    const n = Atomics.load(header, SlabSlot.COUNT)
    const bytes = Atomics.load(header, SlabSlot.BYTES)
    if (n > 0) {
      parts.push(new Uint8Array(sab, SLAB_HEADER_BYTES, bytes).slice())
      count += n
    }
  }
  for (const sab of lanes) {
    const rest = new LaneReader(sab).drainAll()
    parts.push(rest.bytes)
    count += rest.count
  }
  return { bytes: concatBatches(parts), count }
}

export function makeStopReport(
  delivered: number,
  leftovers: Uint8Array,
  count: number,
  timedOut: boolean,
  walPendingItems: number,
): StopReport {
  let items: unknown[] | undefined
  return Object.freeze({
    delivered,
    undeliveredCount: count,
    timedOut,
    walPendingItems,
    undeliveredBatch: leftovers,
    undelivered(): unknown[] {
      items ??= decodeItemsLenient(leftovers, count)
      return items
    },
  })
}

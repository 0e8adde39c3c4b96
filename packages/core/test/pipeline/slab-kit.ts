import { forEachRecord } from '../../src/batch/batch-format.ts'
import { Record, recordSize } from '../../src/ring/layout.ts'

/** Where a test's slab-like object stores records: `data` and the extent fields a Slab has. */
interface SlabLike {
  readonly data: Uint8Array
  count: number
  bytes: number
}

/** Writes `items` into `slab` as raw records (the batch format's framing, see ring/layout.ts). */
export function fillRaw<S extends SlabLike>(slab: S, items: readonly string[]): S {
  const view = new DataView(slab.data.buffer, slab.data.byteOffset, slab.data.byteLength)
  let at = 0
  for (const item of items) {
    const payload = new TextEncoder().encode(item)
    view.setUint32(at, (Record.RAW_FLAG | payload.byteLength) >>> 0, true)
    slab.data.set(payload, at + Record.HEADER_BYTES)
    at += recordSize(payload.byteLength)
  }
  slab.count = items.length
  slab.bytes = at
  return slab
}

/** The raw items of a batch's records (the inverse of fillRaw). */
export function rawItems(bytes: Uint8Array): string[] {
  const items: string[] = []
  forEachRecord(bytes, (start, length) =>
    items.push(new TextDecoder().decode(bytes.subarray(start, start + length))),
  )
  return items
}

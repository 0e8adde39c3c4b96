import { BatchRecord, batchRecordSize } from '@vinequeue/wal/batch-records'

/**
 * Frames msgpack items as the queue frames a batch of `enqueue` calls: one
 * single-item record each (the batch record format of
 * @vinequeue/wal/batch-records). In a SharedArrayBuffer when `shared`, as the
 * queue's slabs are.
 */
export function frameRecords(parts: readonly Uint8Array[], shared = false): Uint8Array {
  const size = parts.reduce((sum, p) => sum + batchRecordSize(p.byteLength), 0)
  const out = new Uint8Array(shared ? new SharedArrayBuffer(size) : new ArrayBuffer(size))
  const view = new DataView(out.buffer)
  let at = 0
  for (const p of parts) {
    view.setUint32(at, p.byteLength, true)
    out.set(p, at + BatchRecord.HEADER_BYTES)
    at += batchRecordSize(p.byteLength)
  }
  return out
}

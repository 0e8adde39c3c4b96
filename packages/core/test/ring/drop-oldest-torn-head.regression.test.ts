/**
 * Regression (fixed in 8c686e6: drainInto validates every record against the published bytes
 * and the destination before copying it):
 *
 * drainInto documents that a dropOldest producer evicting the records it is reading makes it
 * return -1 ("nothing was taken and the caller may simply try again"). It used to trust the
 * header at READ before any check: if the producer evicts and *overwrites* the head between
 * the reader's loads of READ/WRITE and its read of the first header, that header is arbitrary
 * bytes (here: the middle of the producer's new payload). Its length passed the only check
 * (`size <= WRITE - pos`, against the stale WRITE), `takeFirst` took it "whatever its size",
 * and `dst.set` threw RangeError when it exceeded the destination — in the pipeline, the
 * slab (`max(maxBatchBytes, recordSize(maxItemBytes))`), so the pipeline thread died and the
 * queue went down. (A garbage header equal to WRAP also sent `pos` past WRITE, after which
 * `(w - pos) >>> 0` was huge and the size check void.)
 *
 * The interleaving needs the consumer to be descheduled at that exact point while the
 * producer evicts and writes ≥ (capacity − used) bytes — rare, but legal on a loaded machine,
 * and no worse than one eviction when hardLimit is 1. Not reproduced with real threads on the
 * 2-core dev box in 40 s; reproduced here deterministically by running the producer inside the
 * reader's Atomics.load of WRITE (a stand-in for preemption, not a mock of our code).
 */
import { describe, expect, it } from 'vitest'
import { LaneReader } from '../../src/ring/lane-reader.ts'
import { LaneWriter } from '../../src/ring/lane-writer.ts'
import { createControlBuffer, createLaneBuffer, LaneSlot } from '../../src/ring/layout.ts'

/** Runs `preempt` right after the next Atomics.load of `slot` in `sab` (once). */
function preemptAfterLoad(sab: SharedArrayBuffer, slot: number, preempt: () => void): () => void {
  const atomics = Atomics as unknown as { load: typeof Atomics.load }
  const realLoad = atomics.load
  let armed = true
  atomics.load = ((ta: Int32Array, index: number) => {
    const value = realLoad(ta, index)
    if (armed && ta.buffer === sab && index === slot) {
      armed = false
      preempt()
    }
    return value
  }) as typeof Atomics.load
  return () => {
    atomics.load = realLoad
  }
}

describe('regression: dropOldest eviction overwrites the head while the reader starts a drain', () => {
  it('drainInto returns -1 (never throws) when the header it reads was overwritten', () => {
    // A 1 KiB lane, hard limit 1, already mid-ring (READ = WRITE = 512).
    const sab = createLaneBuffer(1024)
    const i32 = new Int32Array(sab)
    Atomics.store(i32, LaneSlot.WRITE, 512)
    Atomics.store(i32, LaneSlot.READ, 512)
    const writer = new LaneWriter(sab, createControlBuffer(), 1)
    const reader = new LaneReader(sab)
    // 63 records of 16 bytes: 1008 bytes in use, 16 free.
    for (let i = 0; i < 63; i++) {
      const at = writer.reserve(12, false)
      writer.bytes.fill(i, at, at + 12)
    }
    writer.publish()

    const restore = preemptAfterLoad(sab, LaneSlot.WRITE, () => {
      // The producer (dropOldest) needs 64 bytes: evicts 3 records (READ 512 → 560) and
      // writes at 1520 = offset 496..560, across the old head at offset 512. Bytes 12..15 of
      // its payload land where the reader will look for the head's header: 512.
      expect(writer.evictFor(60)).toBe(true)
      const at = writer.reserve(60, true)
      const payload = new Uint8Array(60)
      new DataView(payload.buffer).setUint32(12, 512, true)
      writer.bytes.set(payload, at)
      writer.publish()
    })
    let result: number | undefined
    let thrown: unknown
    try {
      // As the pipeline calls it on an empty slab: room for maxBatchBytes (128), takeFirst.
      result = reader.drainInto(new Uint8Array(128), 0, 128, 1000, true)
    } catch (err) {
      thrown = err
    } finally {
      restore()
    }
    expect(writer.droppedOldest).toBe(3)
    // Before the fix: RangeError "offset is out of bounds" from Uint8Array.set.
    expect(thrown).toBeUndefined()
    expect(result).toBe(-1)
  })
})

/**
 * Property tests of the batch format (batch/batch-format.ts): records framed by an encoder
 * written here from the spec (u32 LE length | RAW | GROUP flags, payload, zero pad to 4;
 * a group's payload is a u32 LE item count then one msgpack array) must decode to their items;
 * extractRecords/compactRecords must keep exactly the chosen items — splitting group records —
 * and what a lane drains must be byte-identical to that framing.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Batch, compactRecords, extractRecords, forEachRecord } from '../../src/batch/batch-format.ts'
import { createPackr } from '../../src/codec/codec.ts'
import { ItemDecodeError } from '../../src/errors.ts'
import { Record } from '../../src/ring/layout.ts'
import { fcParams, firstDifference, LaneHarness, newCoverage, sizeOf, TWO_32 } from '../ring/lane-harness.ts'

/** One record of a batch: raw bytes (enqueueRaw), one msgpack item, or a group of items. */
type BatchRecord =
  | { readonly kind: 'raw'; readonly bytes: Uint8Array }
  | { readonly kind: 'item'; readonly value: Value }
  | { readonly kind: 'group'; readonly values: readonly Value[] }

type Value = null | boolean | number | string | number[]

const packr = createPackr()

/** Values whose msgpack encodings vary in kind and length (fixstr/str8, fixarray, ints of every width). */
const valueArb: fc.Arbitrary<Value> = fc.oneof(
  fc.integer(),
  fc.integer({ min: -40, max: 200 }),
  fc.string({ maxLength: 40 }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer({ min: -70_000, max: 70_000 }), { maxLength: 5 }),
)

const batchRecordArb: fc.Arbitrary<BatchRecord> = fc.oneof(
  fc.record({ kind: fc.constant('raw' as const), bytes: fc.uint8Array({ maxLength: 40 }) }),
  fc.record({ kind: fc.constant('item' as const), value: valueArb }),
  // 1–40 elements: fixarray and array16 headers.
  fc.record({
    kind: fc.constant('group' as const),
    values: fc.array(valueArb, { minLength: 1, maxLength: 40 }),
  }),
)

/** The record's payload and header flags, framed as the spec says (count word LE, msgpack array). */
function recordPayload(rec: BatchRecord): { payload: Uint8Array; flags: number } {
  if (rec.kind === 'raw') return { payload: rec.bytes, flags: Record.RAW_FLAG }
  if (rec.kind === 'item') return { payload: packr.pack(rec.value).slice(), flags: 0 }
  const array = packr.pack(rec.values)
  const payload = new Uint8Array(4 + array.byteLength)
  new DataView(payload.buffer).setUint32(0, rec.values.length, true)
  payload.set(array, 4)
  return { payload, flags: Record.GROUP_FLAG }
}

/** Frames records: u32 LE (length | flags) + payload + zero pad to 4 bytes. */
function encodeBatch(records: readonly BatchRecord[]): Uint8Array {
  const parts = records.map(recordPayload)
  const out = new Uint8Array(parts.reduce((sum, p) => sum + sizeOf(p.payload.byteLength), 0))
  const view = new DataView(out.buffer)
  let pos = 0
  for (const { payload, flags } of parts) {
    view.setUint32(pos, (payload.byteLength | flags) >>> 0, true)
    out.set(payload, pos + 4)
    pos += sizeOf(payload.byteLength)
  }
  return out
}

/** The items a batch of these records holds, in order (groups flattened, raw as bytes). */
function itemsOf(records: readonly BatchRecord[]): unknown[] {
  return records.flatMap((r): unknown[] =>
    r.kind === 'raw' ? [r.bytes] : r.kind === 'item' ? [r.value] : [...r.values],
  )
}

/** Decodes a batch the way senders see it. */
function decodeItems(bytes: Uint8Array): unknown[] {
  return new Batch(bytes, 0).items()
}

/** Every group record's count word matches its array (what the reader and evictFor count). */
function expectWellFormed(bytes: Uint8Array): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  forEachRecord(bytes, (start, length, _raw, index, group) => {
    if (!group) return
    const count = view.getUint32(start, true)
    const values = packr.unpack(bytes.subarray(start + 4, start + length)) as unknown[]
    expect({ record: index, count }).toEqual({ record: index, count: values.length })
  })
}

/** A batch and an ascending subset of its item indices. */
const batchAndKeepArb = fc.array(batchRecordArb, { maxLength: 12 }).chain((records) =>
  fc.record({
    records: fc.constant(records),
    keep: fc.subarray(
      itemsOf(records).map((_, i) => i),
      { minLength: 0 },
    ),
  }),
)

describe('batch format (fast-check)', () => {
  it('forEachRecord walks every record with its raw and group flags, at any byteOffset', () => {
    fc.assert(
      fc.property(fc.array(batchRecordArb, { maxLength: 12 }), fc.nat(16), (records, lead) => {
        const framed = encodeBatch(records)
        // Batches live at an offset inside a slab: decode through a view.
        const slab = new Uint8Array(lead * 4 + framed.byteLength)
        slab.set(framed, lead * 4)
        const view = slab.subarray(lead * 4)
        const seen: Array<{ kind: string; length: number }> = []
        const n = forEachRecord(view, (_start, length, raw, _index, group) => {
          seen.push({ kind: raw ? 'raw' : group ? 'group' : 'item', length })
        })
        expect(n).toBe(records.length)
        expect(seen).toEqual(
          records.map((r) => ({ kind: r.kind, length: recordPayload(r).payload.byteLength })),
        )
        expect(decodeItems(view)).toEqual(itemsOf(records))
      }),
      fcParams(300),
    )
  })

  it('payloads() slices every item, group elements included, each decoding to its item', () => {
    fc.assert(
      fc.property(fc.array(batchRecordArb, { maxLength: 12 }), (records) => {
        const framed = encodeBatch(records)
        const items = itemsOf(records)
        const payloads = new Batch(framed, items.length).payloads()
        expect(payloads.length).toBe(items.length)
        payloads.forEach((p, i) => {
          expect(p.raw ? p.bytes : packr.unpack(p.bytes)).toEqual(items[i])
        })
      }),
      fcParams(300),
    )
  })

  it('entries() pairs every item with its raw flag: true for enqueueRaw records only', () => {
    fc.assert(
      fc.property(fc.array(batchRecordArb, { maxLength: 12 }), (records) => {
        const items = itemsOf(records)
        const rawFlags = records.flatMap((r) =>
          r.kind === 'group' ? r.values.map(() => false) : [r.kind === 'raw'],
        )
        const entries = new Batch(encodeBatch(records), items.length).entries()
        expect(entries).toEqual(items.map((value, i) => ({ value, raw: rawFlags[i] })))
      }),
      fcParams(300),
    )
  })

  it('entries() tells a raw item from a decoded msgpack bin value, and throws ItemDecodeError as items() does', () => {
    const bin = new Uint8Array([1, 2, 3])
    const framed = encodeBatch([
      { kind: 'raw', bytes: bin },
      { kind: 'item', value: bin as unknown as Value },
    ])
    const entries = new Batch(framed, 2).entries()
    expect(entries.map((e) => e.raw)).toEqual([true, false])
    expect(entries.map((e) => [...(e.value as Uint8Array)])).toEqual([
      [1, 2, 3],
      [1, 2, 3],
    ])
    // A fixext 1 of an extension type msgpackr does not know: valid framing, undecodable.
    const bad = new Uint8Array(8)
    new DataView(bad.buffer).setUint32(0, 3, true)
    bad.set([0xd4, 0x05, 0x00], 4)
    const batch = new Batch(bad, 1)
    expect(() => batch.entries()).toThrow(ItemDecodeError)
    expect(() => batch.entries()).toThrow(/1 of the batch's 1 items cannot be decoded/)
  })

  it('extractRecords keeps exactly the chosen items, in order, splitting groups; input untouched', () => {
    fc.assert(
      fc.property(batchAndKeepArb, ({ records, keep }) => {
        const framed = encodeBatch(records)
        const original = framed.slice()
        const out = extractRecords(framed, keep)
        expect(firstDifference(framed, original)).toBe(-1)
        const items = itemsOf(records)
        expect(decodeItems(out)).toEqual(keep.map((i) => items[i]))
        expectWellFormed(out)
        expect(out.byteLength).toBeLessThanOrEqual(framed.byteLength)
        // Whole records are copied as they are: keeping everything is the identity.
        if (keep.length === items.length) expect(firstDifference(out, framed)).toBe(-1)
        // A copy, not a view: later changes to the batch do not show through.
        framed.fill(0xaa)
        expect(decodeItems(out)).toEqual(keep.map((i) => items[i]))
      }),
      fcParams(400),
    )
  })

  it('compactRecords moves exactly the kept items to the front, in place', () => {
    fc.assert(
      fc.property(batchAndKeepArb, fc.nat(16), ({ records, keep }, lead) => {
        const framed = encodeBatch(records)
        const slab = new Uint8Array(lead * 4 + framed.byteLength)
        slab.set(framed, lead * 4)
        const view = slab.subarray(lead * 4)
        const items = itemsOf(records)
        const length = compactRecords(view, keep)
        expect(length).toBe(extractRecords(framed, keep).byteLength)
        expect(decodeItems(view.subarray(0, length))).toEqual(keep.map((i) => items[i]))
        expectWellFormed(view.subarray(0, length))
        // Bytes before the view are not touched.
        expect(slab.subarray(0, lead * 4).every((b) => b === 0)).toBe(true)
      }),
      fcParams(400),
    )
  })

  it('what a lane drains is a batch: byte-identical to the framing, items intact', () => {
    fc.assert(
      fc.property(fc.array(batchRecordArb, { maxLength: 12 }), (records) => {
        // 64 bytes before a lap boundary and 2^32: the run is split and positions wrap.
        const h = new LaneHarness(4096, 1, TWO_32 - 64, newCoverage())
        for (const rec of records) {
          const { payload } = recordPayload(rec)
          const at = h.writer.reserve(payload.byteLength, rec.kind === 'raw', rec.kind === 'group')
          expect(at).toBeGreaterThan(0)
          h.writer.bytes.set(payload, at)
        }
        h.writer.publish()
        const dst = new Uint8Array(4096)
        const items = itemsOf(records)
        expect(h.reader.drainInto(dst, 0, 4096, Number.MAX_SAFE_INTEGER)).toBe(items.length)
        const batch = dst.subarray(0, h.reader.lastBytes)
        // Pads are zeros here only because the lane is fresh.
        expect(firstDifference(batch, encodeBatch(records))).toBe(-1)
        expect(decodeItems(batch)).toEqual(items)
      }),
      fcParams(300),
    )
  })
})

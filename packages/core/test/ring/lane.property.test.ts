/**
 * Property tests of one lane (ring/lane-writer.ts + ring/lane-reader.ts), single thread:
 * fast-check generates schedules of producer and consumer steps — records of 0 bytes up to the
 * whole capacity, raw flags, all-or-nothing groups (one record per item or one group record),
 * publish points and microtask ends, drains with random maxBytes/maxItems/takeFirst, and under
 * dropOldest evictions, also inside a drain — on 1–4 KiB lanes that start anywhere on the
 * 2^32 circle, so wraps happen constantly. The model in lane-harness.ts checks every step.
 *
 * Found here: a drain across a lap boundary that needed no WRAP marker (a record exactly
 * filled the tail) copied past the end of the data area — fixed in 0f9518e, repro in
 * exact-tail-run.regression.test.ts.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ControlSlot, LANE_HEADER_BYTES } from '../../src/ring/layout.ts'
import { type Coverage, fcParams, LaneHarness, newCoverage, type RaceAt, TWO_32 } from './lane-harness.ts'

const WRAP = 0xffffffff
const RAW = 0x40000000

// ---------------------------------------------------------------------------------------------
// Schedules

type Op =
  | { t: 'write'; len: number; raw: boolean }
  /** A length chosen from the tail at run time: len = tail - 4 + delta (exact fill, 4-byte tail, wrap). */
  | { t: 'tail'; delta: number; raw: boolean }
  /** A length chosen at run time to bring the lane to exactly its hard limit (delta 0..-3) or one word over (1). */
  | { t: 'limit'; delta: number; raw: boolean }
  /** Many small records in one synchronous burst: the writer publishes on its own every 64. */
  | { t: 'burst'; lens: number[]; raw: boolean }
  | { t: 'publish' }
  | { t: 'tick' }
  | { t: 'drain'; maxBytes: number; maxItems: number; takeFirst: boolean; dstOffset: number }
  | { t: 'group'; items: Array<{ len: number; raw: boolean }>; abort: boolean; packed: boolean }
  | { t: 'evict'; len: number; raw: boolean }
  | { t: 'evictGroup'; items: Array<{ len: number; raw: boolean }> }
  | {
      t: 'race'
      via: RaceAt
      maxBytes: number
      maxItems: number
      takeFirst: boolean
      len: number
      raw: boolean
    }

const capacityArb = fc.constantFrom(1024, 2048, 4096)

function lenArb(cap: number): fc.Arbitrary<number> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 0, max: 48 }) },
    { weight: 3, arbitrary: fc.integer({ min: 0, max: cap / 4 }) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: cap }) },
  )
}

/** Start positions: 0, just below 2^32 (the first laps cross it), anywhere (word-aligned). */
function startArb(cap: number): fc.Arbitrary<number> {
  return fc.oneof(
    fc.constant(0),
    fc.constant(0xffffff00),
    fc.integer({ min: 1, max: cap }).map((k) => TWO_32 - 4 * k),
    fc.integer({ min: 0, max: 2 ** 30 - 1 }).map((k) => k * 4),
  )
}

const ratioArb = fc.oneof(
  fc.constantFrom(1, 0.95, 0.5),
  fc.double({ min: 0.05, max: 1, noNaN: true, noDefaultInfinity: true }),
)

function drainLimits(cap: number) {
  return {
    maxBytes: fc.oneof(fc.integer({ min: 0, max: cap }), fc.constant(Number.MAX_SAFE_INTEGER)),
    maxItems: fc.oneof(fc.integer({ min: 0, max: 12 }), fc.constant(Number.MAX_SAFE_INTEGER)),
    takeFirst: fc.boolean(),
  }
}

function opArb(cap: number, evicting: boolean): fc.Arbitrary<Op> {
  const raw = fc.boolean()
  const limits = drainLimits(cap)
  const ops: Array<fc.WeightedArbitrary<Op>> = [
    { weight: 10, arbitrary: fc.record({ t: fc.constant('write' as const), len: lenArb(cap), raw }) },
    {
      weight: 4,
      arbitrary: fc.record({ t: fc.constant('tail' as const), delta: fc.integer({ min: -11, max: 1 }), raw }),
    },
    {
      weight: 2,
      arbitrary: fc.record({ t: fc.constant('limit' as const), delta: fc.integer({ min: -3, max: 1 }), raw }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        t: fc.constant('burst' as const),
        lens: fc.array(fc.integer({ min: 0, max: 8 }), { minLength: 1, maxLength: 140, size: 'max' }),
        raw,
      }),
    },
    { weight: 2, arbitrary: fc.constant({ t: 'publish' as const }) },
    { weight: 2, arbitrary: fc.constant({ t: 'tick' as const }) },
    {
      weight: 6,
      arbitrary: fc.record({ t: fc.constant('drain' as const), ...limits, dstOffset: fc.nat(7) }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        t: fc.constant('group' as const),
        items: fc.array(fc.record({ len: lenArb(cap), raw }), { minLength: 1, maxLength: 8 }),
        abort: fc.boolean(),
        packed: fc.boolean(),
      }),
    },
  ]
  if (evicting) {
    ops.push(
      { weight: 8, arbitrary: fc.record({ t: fc.constant('evict' as const), len: lenArb(cap), raw }) },
      {
        weight: 2,
        arbitrary: fc.record({
          t: fc.constant('evictGroup' as const),
          items: fc.array(fc.record({ len: fc.integer({ min: 0, max: cap / 8 }), raw }), {
            minLength: 1,
            maxLength: 8,
          }),
        }),
      },
      {
        weight: 3,
        arbitrary: fc.record({
          t: fc.constant('race' as const),
          via: fc.constantFrom<RaceAt>('copy', 'release'),
          maxBytes: fc.integer({ min: 0, max: cap }),
          maxItems: limits.maxItems,
          takeFirst: limits.takeFirst,
          len: lenArb(cap),
          raw,
        }),
      },
    )
  }
  return fc.oneof(...ops)
}

function scenarioArb(evicting: boolean, maxOps: number) {
  return capacityArb.chain((cap) =>
    fc.record({
      cap: fc.constant(cap),
      ratio: ratioArb,
      start: startArb(cap),
      ops: fc.array(opArb(cap, evicting), { minLength: 1, maxLength: maxOps, size: 'max' }),
    }),
  )
}

async function runSchedule(
  s: { cap: number; ratio: number; start: number; ops: Op[] },
  cov: Coverage,
): Promise<void> {
  const h = new LaneHarness(s.cap, s.ratio, s.start, cov)
  h.check()
  for (const op of s.ops) {
    switch (op.t) {
      case 'write':
        h.write(op.len, op.raw)
        break
      case 'tail': {
        const tail = h.cap - (h.wpos % h.cap)
        h.write(Math.max(0, tail - 4 + op.delta), op.raw)
        break
      }
      case 'limit': {
        // Exactly what is left under the limit (if the record does not wrap), minus the header.
        const left = h.limit - ((h.wpos - h.readSlot) >>> 0)
        h.write(Math.max(0, left - 4 + op.delta), op.raw)
        break
      }
      case 'burst':
        for (const len of op.lens) if (!h.write(len, op.raw)) break
        break
      case 'publish':
        h.publish()
        break
      case 'tick':
        await h.tick()
        break
      case 'drain':
        h.drain(op.maxBytes, op.maxItems, op.takeFirst, op.dstOffset)
        break
      case 'group':
        h.group(op.items, op.abort, op.packed)
        break
      case 'evict':
        h.evictingWrite(op.len, op.raw)
        break
      case 'evictGroup':
        h.evictingGroup(op.items)
        break
      case 'race':
        h.racingDrain(op.via, op.maxBytes, op.maxItems, op.takeFirst, op.len, op.raw)
        break
      default: {
        const never: never = op
        throw new TypeError(`unknown op ${JSON.stringify(never)}`)
      }
    }
    h.check()
  }
  h.finish()
  // Let the writer's queued microtask publish run now, not during the next schedule.
  await Promise.resolve()
}

// ---------------------------------------------------------------------------------------------

describe('lane: wrap-around cases, one by one', () => {
  function lane(cap: number, start: number, ratio = 1) {
    const cov = newCoverage()
    return { h: new LaneHarness(cap, ratio, start, cov), cov }
  }

  it('a record that exactly fills the tail ends the lap without a WRAP marker', () => {
    const { h, cov } = lane(1024, 960)
    expect(h.write(57, false)).toBe(true) // 4 + 57 + 3 pad = 64 = the tail
    expect(cov.exactTail).toBe(1)
    expect(h.wpos).toBe(1024)
    expect(h.write(10, true)).toBe(true) // next lap, offset 0, no marker needed
    expect(h.records[1]!.pos).toBe(1024)
    expect(h.records[1]!.wrapPos).toBeUndefined()
    h.publish()
    h.check()
    h.drain(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, false, 0)
    expect(h.readSlot).toBe(1024 + 16)
    h.finish()
  })

  it('a 4-byte tail takes a zero-length record exactly', () => {
    const { h, cov } = lane(1024, 1020)
    expect(h.write(0, true)).toBe(true)
    expect(cov.tail4Zero).toBe(1)
    expect(cov.wraps).toBe(0)
    expect(h.u32[(LANE_HEADER_BYTES + 1020) >>> 2]).toBe(RAW)
    h.publish()
    h.drain(Number.MAX_SAFE_INTEGER, 1, false, 0)
    expect(h.readSlot).toBe(1024)
    h.finish()
  })

  it('a 4-byte tail holds only a WRAP marker for any non-empty record', () => {
    const { h, cov } = lane(1024, 1020)
    expect(h.write(1, false)).toBe(true)
    expect(cov.tail4Wrap).toBe(1)
    expect(h.u32[(LANE_HEADER_BYTES + 1020) >>> 2]).toBe(WRAP)
    expect(h.records[0]!.pos).toBe(1024)
    expect(h.writer.usedBytes()).toBe(4 + 8)
    h.publish()
    h.drain(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, false, 3)
    expect(h.readSlot).toBe(1024 + 8)
    h.finish()
  })

  it('a record that does not fit the tail writes WRAP and starts the next lap at offset 0', () => {
    const { h } = lane(1024, 1000)
    expect(h.write(21, false)).toBe(true) // 28 bytes > 24-byte tail
    expect(h.u32[(LANE_HEADER_BYTES + 1000) >>> 2]).toBe(WRAP)
    expect(h.writer.usedBytes()).toBe(24 + 28)
    h.publish()
    expect(h.reader.usedBytes()).toBe(52)
    h.finish()
  })

  it('a reader stopped by maxItems just before a WRAP marker resumes past it', () => {
    const { h } = lane(1024, 1000)
    expect(h.write(8, false)).toBe(true) // 12 bytes, 12-byte tail left
    expect(h.write(9, true)).toBe(true) // 16 bytes: wraps
    h.publish()
    h.drain(Number.MAX_SAFE_INTEGER, 1, false, 0)
    // On the WRAP marker or past it: where READ stops is not part of the contract.
    expect([1012, 1024]).toContain(h.readSlot)
    h.check()
    h.drain(Number.MAX_SAFE_INTEGER, 1, false, 0)
    expect(h.readSlot).toBe(1024 + 16)
    h.finish()
  })

  it('positions cross 2^32 exactly at a lap boundary', () => {
    const { h, cov } = lane(1024, TWO_32 - 16)
    for (let i = 0; i < 3; i++) expect(h.write(4, i === 1)).toBe(true)
    expect(cov.crossed2p32).toBeGreaterThan(0)
    expect(h.wpos).toBe(8)
    expect(h.writer.usedBytes()).toBe(24)
    h.publish()
    expect(h.writeSlot).toBe(8)
    expect(h.reader.usedBytes()).toBe(24)
    expect(h.reader.reached(TWO_32 - 16)).toBe(true)
    expect(h.reader.reached(8)).toBe(false)
    h.finish()
    expect(h.readSlot).toBe(8)
    expect(h.reader.reached(TWO_32 - 16)).toBe(true)
    expect(h.reader.reached(8)).toBe(true)
  })

  it('positions cross 2^32 through a WRAP marker', () => {
    const { h } = lane(1024, TWO_32 - 12)
    expect(h.write(12, false)).toBe(true) // 16 bytes > 12-byte tail
    expect(h.records[0]!.wrapPos).toBe(TWO_32 - 12)
    expect(h.records[0]!.pos).toBe(0)
    expect(h.wpos).toBe(16)
    h.publish()
    expect(h.reader.usedBytes()).toBe(28)
    h.finish()
    expect(h.readSlot).toBe(16)
  })

  it('at the hard limit reserve returns -1 and writes nothing, then succeeds once drained', () => {
    const { h, cov } = lane(1024, 0, 0.5) // limit 512 bytes
    let accepted = 0
    while (h.write(60, false)) accepted++ // 64-byte records
    expect(accepted).toBe(8)
    expect(cov.refused).toBe(1)
    expect(h.write(0, false)).toBe(false) // even 4 bytes: the lane holds exactly its limit
    h.publish()
    h.drain(64, Number.MAX_SAFE_INTEGER, false, 0)
    expect(h.write(60, false)).toBe(true)
    h.finish()
  })

  it('the writer publishes by itself after 64 records and at the end of the microtask', async () => {
    const { h } = lane(4096, 0)
    for (let i = 0; i < 63; i++) h.write(0, false)
    expect(h.writeSlot).toBe(0)
    h.write(0, false)
    expect(h.writeSlot).toBe(64 * 4)
    h.write(0, false)
    expect(h.writeSlot).toBe(64 * 4)
    await h.tick()
    expect(h.writeSlot).toBe(65 * 4)
    h.check()
    h.finish()
  })

  it('publish wakes a sleeping consumer through the doorbell once', () => {
    const { h } = lane(1024, 0)
    const control = new Int32Array(h.control)
    Atomics.store(control, ControlSlot.DOORBELL, 1)
    h.write(3, false)
    h.publish()
    expect(Atomics.load(control, ControlSlot.DOORBELL)).toBe(0)
    h.finish()
  })

  it('drainInto returns -1 when a dropOldest eviction wins the CAS between copy and release', () => {
    const { h, cov } = lane(1024, 0, 0.5)
    for (let i = 0; i < 8; i++) expect(h.write(60, false)).toBe(true) // full: 512 bytes
    h.publish()
    // Reader copies records 0..1; the producer evicts record 0 to write one more; CAS fails.
    h.racingDrain('copy', 128, Number.MAX_SAFE_INTEGER, false, 60, true)
    expect(cov.casLost).toBe(1)
    expect(h.writer.droppedOldest).toBe(1)
    h.check()
    // Nothing was taken by the failed drain: the next one starts at record 1 (the record the
    // producer wrote after evicting is not published yet).
    h.drain(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, false, 0)
    expect(h.consumed).toBe(7)
    h.finish()
  })

  it('drainInto returns -1 when the eviction happens at beforeRelease, even for a lone WRAP', () => {
    const { h, cov } = lane(1024, 1000, 0.5)
    expect(h.write(8, false)).toBe(true) // 12 bytes up to 1012
    h.publish()
    h.drain(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, false, 0)
    expect(h.readSlot).toBe(1012)
    expect(h.write(60, false)).toBe(true) // 12-byte tail: WRAP at 1012 (= READ), record at 1024
    h.publish()
    // maxBytes 0: the reader only skips the WRAP (0 items) — and still loses the CAS to a
    // producer that evicts from READ at that moment.
    h.racingDrain('release', 0, Number.MAX_SAFE_INTEGER, false, 440, false)
    expect(cov.casLost).toBe(1)
    h.check()
    h.finish()
  })

  it('a group record counts its items: maxItems stops before it unless takeFirst takes it first', () => {
    const { h, cov } = lane(1024, 0)
    const five = Array.from({ length: 5 }, (_, i) => ({ len: i * 3, raw: false }))
    h.group(five, false, true) // one group record of 5 items
    expect(cov.groupRecords).toBe(1)
    h.write(8, false)
    h.publish()
    h.drain(Number.MAX_SAFE_INTEGER, 4, false, 0) // 5 items > maxItems 4: nothing taken
    expect(h.consumed).toBe(0)
    h.drain(Number.MAX_SAFE_INTEGER, 4, true, 0) // takeFirst: the whole group
    expect(h.consumed).toBe(5)
    h.finish()
    expect(h.consumed).toBe(6)
  })

  it('evicting a group record drops all its items at once', () => {
    const { h } = lane(1024, 0, 0.5)
    h.group(
      Array.from({ length: 7 }, () => ({ len: 40, raw: false })),
      false,
      true,
    ) // 4 + 4 + 7 × 40 = 288 bytes
    h.write(100, false)
    h.publish()
    expect(h.evictingWrite(200, false)).toBe(true) // needs the group's room
    expect(h.writer.droppedOldest).toBe(7)
    h.finish()
    expect(h.consumed).toBe(2)
  })

  it('evictFor refuses when only unpublished records fill the lane', () => {
    const { h, cov } = lane(1024, 0, 0.5)
    for (let i = 0; i < 4; i++) h.write(60, false)
    h.publish()
    h.drain(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, false, 0)
    // 512-byte limit: a 452-byte record does not fit next to a 64-byte one...
    h.write(60, false)
    // ...which evictingWrite publishes, then evicts, then the 452 fits.
    expect(h.evictingWrite(448, false)).toBe(true)
    expect(cov.evictedItems).toBe(1)
    // Unpublished only: the writer's own records cannot be evicted.
    const { h: h2, cov: cov2 } = lane(1024, 0, 0.5)
    for (let i = 0; i < 4; i++) h2.write(124, false) // 512 bytes, unpublished
    expect(h2.writer.evictFor(0)).toBe(false)
    expect(cov2.evictedItems).toBe(0)
    h.finish()
    h2.finish()
  })
})

describe('lane: model-based schedules (fast-check)', () => {
  it('block policy: every published record comes out once, in order, byte-identical, never early', async () => {
    const cov = newCoverage()
    await fc.assert(
      fc.asyncProperty(scenarioArb(false, 250), (s) => runSchedule(s, cov)),
      fcParams(400),
    )
    if (process.env.LANE_COVERAGE) console.log('block', cov)
    // The generators must actually reach the cases this property is about.
    expect(cov.exactTail).toBeGreaterThan(0)
    expect(cov.tail4Zero).toBeGreaterThan(0)
    expect(cov.tail4Wrap).toBeGreaterThan(0)
    expect(cov.wraps).toBeGreaterThan(100)
    expect(cov.crossed2p32).toBeGreaterThan(0)
    expect(cov.refused).toBeGreaterThan(0)
    expect(cov.atLimit).toBeGreaterThan(0)
    expect(cov.autoPublished).toBeGreaterThan(0)
    expect(cov.groupsKept).toBeGreaterThan(0)
    expect(cov.groupsRolledBack).toBeGreaterThan(0)
    expect(cov.groupRecords).toBeGreaterThan(0)
  })

  it('dropOldest: evicted + drained + left == written, survivors in order; a lost CAS takes nothing', async () => {
    const cov = newCoverage()
    await fc.assert(
      fc.asyncProperty(scenarioArb(true, 250), (s) => runSchedule(s, cov)),
      fcParams(400),
    )
    if (process.env.LANE_COVERAGE) console.log('dropOldest', cov)
    expect(cov.evictedItems).toBeGreaterThan(0)
    expect(cov.evictRefused).toBeGreaterThan(0)
    expect(cov.casLost).toBeGreaterThan(0)
    expect(cov.groupsKept).toBeGreaterThan(0)
    expect(cov.groupsRolledBack).toBeGreaterThan(0)
    expect(cov.wraps).toBeGreaterThan(100)
    expect(cov.crossed2p32).toBeGreaterThan(0)
  })
})

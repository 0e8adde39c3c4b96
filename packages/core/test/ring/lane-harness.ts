/**
 * The model behind the lane property tests (lane.property.test.ts, and the lane-to-batch
 * property in test/batch): a real lane — LaneWriter + LaneReader on one SharedArrayBuffer,
 * single thread — and a plain model of it (the records with their byte positions and items)
 * that predicts what every producer or consumer step must do, checked as it runs.
 *
 * The model computes record sizes and placements on its own (`sizeOf`, `place`) from the
 * layout spec in ring/layout.ts — header + payload padded to 4 bytes, never straddling the end
 * of the data area, a WRAP marker in a tail that is too short, positions modulo 2^32, group
 * records counting their items — and `check()` verifies between steps: positions and counters
 * in the shared slots, both sides' `usedBytes()`, that the reader returns exactly the published
 * records it may take, in order, byte-identical with their raw/group flags, and that nothing
 * outside the reported bytes is touched.
 *
 * Concurrency between the consumer's copy and its CAS on READ is simulated deterministically,
 * two ways: a destination whose `set` runs a dropOldest eviction (the producer cuts in at the
 * reader's first copy, mid-run when a WRAP marker splits it), and drainInto's own
 * `beforeRelease` callback (between copy and release).
 */
import { expect } from 'vitest'
import { forEachRecord } from '../../src/batch/batch-format.ts'
import { LaneReader } from '../../src/ring/lane-reader.ts'
import { LaneWriter } from '../../src/ring/lane-writer.ts'
import {
  createControlBuffer,
  createLaneBuffer,
  LANE_HEADER_BYTES,
  LaneCounter,
  LaneSlot,
} from '../../src/ring/layout.ts'

export const TWO_32 = 2 ** 32
const WRAP = 0xffffffff
const RAW = 0x40000000
const GROUP = 0x80000000
/** LaneWriter publishes on its own after this many records in one synchronous burst. */
const PUBLISH_EVERY = 64

/** Record size by the spec (header + payload + pad to 4), computed independently of recordSize(). */
export function sizeOf(len: number): number {
  return 4 + Math.ceil(len / 4) * 4
}

/** Deterministic payload bytes for record `id`. */
export function payloadFor(id: number, len: number): Uint8Array {
  const out = new Uint8Array(len)
  let x = Math.imul(id + 1, 0x9e3779b1) >>> 0
  for (let i = 0; i < len; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    out[i] = x >>> 24
  }
  return out
}

/**
 * fast-check parameters: a fixed seed by default so CI is deterministic; `FC_SEED=<n>` replays
 * a seed fast-check printed, `FC_SEED=random` explores new ones.
 */
export function fcParams(numRuns: number): { numRuns: number; seed?: number } {
  const seed = process.env.FC_SEED
  if (seed === 'random') return { numRuns }
  return { numRuns, seed: seed ? Number(seed) : 20_261_126 }
}

/**
 * `expect(actual).toBe(expected)` for the hot paths: a plain compare, and expect() only to
 * report a mismatch (tens of thousands of steps run per property).
 */
export function same<T>(actual: T, expected: T, what: string): void {
  if (!Object.is(actual, expected)) expect(actual, what).toBe(expected)
}

export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (a.byteLength !== b.byteLength) return Math.min(a.byteLength, b.byteLength)
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return i
  return -1
}

/** A destination whose first `set` (the reader's copy) runs `hook` before returning. */
export class HookedBytes extends Uint8Array {
  hook: (() => void) | undefined
  override set(array: ArrayLike<number>, offset?: number): void {
    super.set(array, offset)
    const hook = this.hook
    this.hook = undefined
    hook?.()
  }
}

/** Where a simulated dropOldest producer cuts into drainInto: at its copy, or at beforeRelease. */
export type RaceAt = 'copy' | 'release'

interface ModelRecord {
  readonly id: number
  readonly len: number
  readonly raw: boolean
  /** A group record (enqueueBatch): its payload starts with a u32 item count. */
  readonly group: boolean
  /** Items the record holds: 1, or a group's count. Counters and maxItems count items. */
  readonly items: number
  /** Position (mod 2^32) of the record's header. */
  readonly pos: number
  /** Position of the WRAP marker written just before it, if it wrapped. */
  readonly wrapPos: number | undefined
  readonly payload: Uint8Array
}

interface Placement {
  readonly need: number
  readonly off: number
  readonly tail: number
  readonly wraps: boolean
  /** Bytes the record costs here, the wasted tail included when it wraps. */
  readonly total: number
}

/** How often each interesting case was reached, summed over every run of a property. */
export interface Coverage {
  accepted: number
  exactTail: number
  tail4Zero: number
  tail4Wrap: number
  wraps: number
  crossed2p32: number
  refused: number
  /** Records accepted that brought the lane to exactly its hard limit. */
  atLimit: number
  /** Publishes the writer did on its own (64 records in one burst). */
  autoPublished: number
  drained: number
  evictedItems: number
  evictRefused: number
  casLost: number
  groupsKept: number
  groupsRolledBack: number
  groupRecords: number
}

export function newCoverage(): Coverage {
  return {
    accepted: 0,
    exactTail: 0,
    tail4Zero: 0,
    tail4Wrap: 0,
    wraps: 0,
    crossed2p32: 0,
    refused: 0,
    atLimit: 0,
    autoPublished: 0,
    drained: 0,
    evictedItems: 0,
    evictRefused: 0,
    casLost: 0,
    groupsKept: 0,
    groupsRolledBack: 0,
    groupRecords: 0,
  }
}

/** A real lane (writer + reader on one SharedArrayBuffer) and its model. */
export class LaneHarness {
  readonly cap: number
  readonly ratio: number
  readonly limit: number
  readonly sab: SharedArrayBuffer
  readonly control: SharedArrayBuffer
  readonly writer: LaneWriter
  readonly reader: LaneReader
  readonly i32: Int32Array
  readonly u32: Uint32Array
  readonly u8: Uint8Array
  readonly u64: BigUint64Array
  readonly cov: Coverage
  /** Every record accepted (and not rolled back), in write order. */
  readonly records: ModelRecord[] = []
  /** Index of the first record neither consumed nor evicted. */
  head = 0
  /** Records visible to the consumer (records[0 .. published)). */
  published = 0
  /** The writer's private write position and the published one. */
  wpos: number
  pubPos: number
  /** Records committed since the last publish, and whether a microtask publish is queued. */
  pending = 0
  scheduled = false
  /** Items (not records) consumed and evicted; items in records[0 .. head) and in all. */
  consumed = 0
  evicted = 0
  headItems = 0
  totalItems = 0
  nextId = 0

  constructor(cap: number, ratio: number, start: number, cov: Coverage) {
    this.cap = cap
    this.ratio = ratio
    // The hard limit in bytes: the ratio of the capacity, rounded down to whole words.
    this.limit = Math.max(8, Math.floor(cap * ratio) & ~3)
    this.sab = createLaneBuffer(cap)
    this.control = createControlBuffer()
    this.i32 = new Int32Array(this.sab)
    this.u32 = new Uint32Array(this.sab)
    this.u8 = new Uint8Array(this.sab)
    this.u64 = new BigUint64Array(this.sab)
    // Both sides read WRITE/READ in their constructors: preset them to start anywhere on the
    // 2^32 circle (a lane that has already moved ~4 GiB).
    Atomics.store(this.i32, LaneSlot.WRITE, start | 0)
    Atomics.store(this.i32, LaneSlot.READ, start | 0)
    this.writer = new LaneWriter(this.sab, this.control, ratio)
    this.reader = new LaneReader(this.sab)
    this.wpos = start
    this.pubPos = start
    this.cov = cov
  }

  /** The shared READ slot. */
  get readSlot(): number {
    return Atomics.load(this.i32, LaneSlot.READ) >>> 0
  }

  /** The shared (published) WRITE slot. */
  get writeSlot(): number {
    return Atomics.load(this.i32, LaneSlot.WRITE) >>> 0
  }

  /** Where a record of `len` payload bytes goes from the current write position. */
  place(len: number): Placement {
    const need = sizeOf(len)
    const off = this.wpos % this.cap
    const tail = this.cap - off
    const wraps = need > tail
    return { need, off, tail, wraps, total: wraps ? tail + need : need }
  }

  fits(p: Placement): boolean {
    return ((this.wpos - this.readSlot) >>> 0) + p.total <= this.limit
  }

  /**
   * Checks a successful reserve() against the model, writes the payload (for a group record of
   * `groupItems` items, its count with setGroupCount first) and records the new record.
   */
  #accepted(at: number, len: number, raw: boolean, p: Placement, groupItems = 0): ModelRecord {
    const recOff = p.wraps ? 0 : p.off
    same(at, LANE_HEADER_BYTES + recOff + 4, 'payload index from reserve()')
    // A record never straddles the end of the data area.
    if (recOff + p.need > this.cap) expect.fail(`record at ${recOff} straddles the end`)
    if (p.wraps) same(this.u32[(LANE_HEADER_BYTES + p.off) >>> 2], WRAP, 'WRAP marker')
    const header = raw ? (len | RAW) >>> 0 : groupItems > 0 ? (len | GROUP) >>> 0 : len
    same(this.u32[(LANE_HEADER_BYTES + recOff) >>> 2], header, 'record header')
    const id = this.nextId++
    const rec: ModelRecord = {
      id,
      len,
      raw,
      group: groupItems > 0,
      items: groupItems > 0 ? groupItems : 1,
      pos: p.wraps ? (this.wpos + p.tail) >>> 0 : this.wpos,
      wrapPos: p.wraps ? this.wpos : undefined,
      payload: payloadFor(id, len),
    }
    if (rec.group) {
      new DataView(rec.payload.buffer).setUint32(0, groupItems, true)
      this.writer.setGroupCount(at, groupItems)
      this.writer.bytes.set(rec.payload.subarray(4), at + 4)
      this.cov.groupRecords++
    } else {
      this.writer.bytes.set(rec.payload, at)
    }
    this.records.push(rec)
    this.totalItems += rec.items
    const c = this.cov
    c.accepted++
    if (!p.wraps && p.need === p.tail) c.exactTail++
    if (p.tail === 4 && !p.wraps) c.tail4Zero++
    if (p.tail === 4 && p.wraps) c.tail4Wrap++
    if (p.wraps) c.wraps++
    if (this.wpos + p.total >= TWO_32) c.crossed2p32++
    this.wpos = (this.wpos + p.total) >>> 0
    if ((this.wpos - this.readSlot) >>> 0 === this.limit) c.atLimit++
    return rec
  }

  #modelPublish(): void {
    this.published = this.records.length
    this.pubPos = this.wpos
    this.pending = 0
  }

  #modelCommitted(): void {
    this.pending++
    if (this.pending >= PUBLISH_EVERY) {
      this.#modelPublish()
      this.cov.autoPublished++
    } else this.scheduled = true
  }

  /** Producer: reserve + copy + commit (the block/reject path). Returns false when refused. */
  write(len: number, raw: boolean): boolean {
    const p = this.place(len)
    if (!this.fits(p)) {
      const before = this.u8.slice()
      same(this.writer.reserve(len, raw), -1, 'reserve() over the hard limit')
      // Refused means untouched: no header, no WRAP, no slot moved.
      same(firstDifference(this.u8, before), -1, 'first byte a refused reserve() changed')
      this.cov.refused++
      return false
    }
    const at = this.writer.reserve(len, raw)
    this.#accepted(at, len, raw, p)
    this.writer.committed(1)
    this.#modelCommitted()
    return true
  }

  publish(): void {
    this.writer.publish()
    this.#modelPublish()
  }

  /** Lets the writer's end-of-burst microtask run. */
  async tick(): Promise<void> {
    await Promise.resolve()
    if (this.scheduled) {
      this.scheduled = false
      this.#modelPublish()
    }
  }

  /**
   * What a drainInto with these limits must take: a greedy prefix of the published records,
   * at most maxItems items and maxBytes bytes — except that with takeFirst the first record is
   * taken whatever its size or item count.
   */
  expectedDrain(
    maxBytes: number,
    maxItems: number,
    takeFirst: boolean,
  ): { count: number; records: number; bytes: number } {
    let count = 0
    let records = 0
    let bytes = 0
    for (let i = this.head; i < this.published; i++) {
      const rec = this.records[i]!
      const size = sizeOf(rec.len)
      const first = takeFirst && count === 0
      if ((count + rec.items > maxItems || bytes + size > maxBytes) && !first) break
      bytes += size
      count += rec.items
      records++
    }
    return { count, records, bytes }
  }

  /** Moves `head` past `n` records; returns the items they held. */
  #advance(n: number): number {
    let items = 0
    for (let i = 0; i < n; i++) items += this.records[this.head + i]!.items
    this.head += n
    this.headItems += items
    return items
  }

  /** Checks `count` records decoded from `batch` against records[head ...]. */
  #expectBatch(batch: Uint8Array, count: number): void {
    const n = forEachRecord(batch, (start, length, raw, index, group) => {
      const rec = this.records[this.head + index]
      if (!rec) return expect.fail(`batch record ${index}: no such record in the model`)
      // Plain compares in the hot loop; expect() only to report a mismatch.
      if (length !== rec.len || raw !== rec.raw || group !== rec.group) {
        expect({ id: rec.id, length, raw, group }).toEqual({
          id: rec.id,
          length: rec.len,
          raw: rec.raw,
          group: rec.group,
        })
      }
      const diff = firstDifference(batch.subarray(start, start + length), rec.payload)
      if (diff !== -1) expect.fail(`record ${rec.id}: payload differs at byte ${diff}`)
    })
    same(n, count, 'records in the batch')
  }

  /** Consumer: drainInto with these limits at `dstOffset` of a fresh destination. */
  drain(maxBytes: number, maxItems: number, takeFirst: boolean, dstOffset: number): void {
    const exp = this.expectedDrain(maxBytes, maxItems, takeFirst)
    const fill = 0xee
    const dst = new Uint8Array(dstOffset + this.cap + 8).fill(fill)
    const n = this.reader.drainInto(dst, dstOffset, maxBytes, maxItems, takeFirst)
    same(n, exp.count, 'drainInto() result')
    same(this.reader.lastBytes, exp.bytes, 'lastBytes')
    // Nothing written outside [dstOffset, dstOffset + lastBytes).
    for (let i = 0; i < dst.byteLength; i++) {
      if (i === dstOffset) i += exp.bytes
      if (i < dst.byteLength && dst[i] !== fill) expect.fail(`drainInto wrote outside its range at ${i}`)
    }
    this.#expectBatch(dst.subarray(dstOffset, dstOffset + exp.bytes), exp.records)
    same(this.#advance(exp.records), n, 'items in the records taken')
    this.consumed += n
    this.cov.drained += n
  }

  /**
   * LaneWriter.evictFor(len) against the model: evicts the oldest *published* records (a WRAP
   * marker costs no item) until the record fits; false when READ reaches the published
   * position first (the writer's own unpublished records are never evicted).
   */
  #evictFor(len: number, p: Placement): boolean {
    let r = this.readSlot
    let h = this.head
    let items = 0
    let room: boolean
    for (;;) {
      if (((this.wpos - r) >>> 0) + p.total <= this.limit) {
        room = true
        break
      }
      if (r === this.pubPos) {
        room = false
        break
      }
      const rec = this.records[h]!
      if (rec.wrapPos === r) {
        r = rec.pos
        continue
      }
      same(rec.pos, r, 'position of the record to evict')
      r = (rec.pos + sizeOf(rec.len)) >>> 0
      h++
      items += rec.items
    }
    const droppedBefore = this.writer.droppedOldest
    same(this.writer.evictFor(len), room, 'evictFor() result')
    same(this.writer.droppedOldest - droppedBefore, items, 'records evicted')
    same(this.readSlot, r, 'READ after eviction')
    same(this.#advance(h - this.head), items, 'items evicted')
    this.evicted += items
    this.cov.evictedItems += items
    if (!room) {
      this.cov.evictRefused++
      same(this.writer.reserve(len, false), -1, 'reserve() after a refused eviction')
    } else {
      same(this.fits(p), true, 'room after eviction')
    }
    return room
  }

  /**
   * Producer under dropOldest (Producer.#put): reserve, else publish, evict the oldest
   * published records until the record fits, reserve. Returns false when even evicting every
   * published record leaves no room (the producer throws QueueFullError then).
   */
  evictingWrite(len: number, raw: boolean): boolean {
    const p = this.place(len)
    if (this.fits(p)) return this.write(len, raw)
    this.publish()
    if (!this.#evictFor(len, p)) return false
    const at = this.writer.reserve(len, raw)
    this.#accepted(at, len, raw, p)
    this.writer.committed(1)
    this.#modelCommitted()
    return true
  }

  /**
   * Producer.enqueueBatch under dropOldest (#enqueueBatchEvicting): a group whose records
   * evict older ones as needed — while the group's own records stay unpublished, so eviction
   * must stop at the published position. Evictions stay done when the group rolls back.
   */
  evictingGroup(items: ReadonlyArray<{ len: number; raw: boolean }>): void {
    const total = items.reduce((sum, it) => sum + sizeOf(it.len), 0)
    if (total * 2 > this.cap * this.ratio) return // the producer refuses such a batch up front
    const start = this.writer.beginGroup()
    if (this.pending > 0) this.#modelPublish()
    same(start, this.wpos, 'group start')
    const savedWpos = this.wpos
    const savedCount = this.records.length
    let ok = true
    for (const item of items) {
      const p = this.place(item.len)
      if (!this.fits(p) && !this.#evictFor(item.len, p)) {
        ok = false
        break
      }
      this.#accepted(this.writer.reserve(item.len, item.raw), item.len, item.raw, p)
      same(this.writeSlot, this.pubPos, 'WRITE inside a group')
    }
    this.writer.endGroup(start, ok, this.records.length - savedCount)
    if (ok) {
      this.#modelPublish()
      this.cov.groupsKept++
    } else {
      this.#rollBack(savedWpos, savedCount)
    }
  }

  #rollBack(wpos: number, count: number): void {
    this.wpos = wpos
    for (let i = count; i < this.records.length; i++) this.totalItems -= this.records[i]!.items
    this.records.length = count
    this.cov.groupsRolledBack++
  }

  /**
   * Consumer and a dropOldest producer race: the reader copies, then (inside its copy) the
   * producer evicts and writes, then the reader's CAS runs. When the eviction moved READ the
   * reader must report -1 and take nothing; otherwise it takes what it would have taken.
   */
  racingDrain(
    via: RaceAt,
    maxBytes: number,
    maxItems: number,
    takeFirst: boolean,
    len: number,
    raw: boolean,
  ): void {
    const exp = this.expectedDrain(maxBytes, maxItems, takeFirst)
    const expected = this.records.slice(this.head, this.head + exp.records)
    const readBefore = this.readSlot
    const consumedBefore = Atomics.load(this.u64, LaneCounter.CONSUMED)
    // The reader copies only when it takes a record; it releases when READ moves at all —
    // which a lone WRAP marker at READ also does.
    const next = this.records[this.head]
    const skipsWrap = this.head < this.published && next?.wrapPos === readBefore
    let fired = false
    let moved = false
    const evict = (): void => {
      fired = true
      this.evictingWrite(len, raw)
      moved = this.readSlot !== readBefore
    }
    // Room for maxBytes (the pipeline's slab always has it) plus a first record (takeFirst).
    const size = maxBytes + this.cap + 8
    let n: number
    let dst: Uint8Array
    if (via === 'copy') {
      // At the reader's first copy: mid-run when the run is cut by a WRAP marker, so the
      // reader goes on reading headers the producer may just have overwritten.
      const hooked = new HookedBytes(size)
      hooked.hook = evict
      dst = hooked
      n = this.reader.drainInto(dst, 0, maxBytes, maxItems, takeFirst)
    } else {
      // At the documented point between copy and release.
      dst = new Uint8Array(size)
      n = this.reader.drainInto(dst, 0, maxBytes, maxItems, takeFirst, evict)
    }
    // A drain that takes nothing may still move READ past a WRAP marker (and so release).
    if (exp.count > 0 || !(via === 'release' && skipsWrap)) {
      same(fired, exp.count > 0, 'producer ran inside drainInto')
    }
    if (moved) {
      this.cov.casLost++
      same(n, -1, 'drainInto() after losing the CAS')
      same(this.reader.lastBytes, 0, 'lastBytes after losing the CAS')
      same(Atomics.load(this.u64, LaneCounter.CONSUMED), consumedBefore, 'CONSUMED after losing the CAS')
      return
    }
    same(n, exp.count, 'drainInto() result')
    same(this.reader.lastBytes, exp.bytes, 'lastBytes')
    expect(this.records.slice(this.head, this.head + exp.records)).toEqual(expected)
    this.#expectBatch(dst.subarray(0, exp.bytes), exp.records)
    same(this.#advance(exp.records), n, 'items in the records taken')
    this.consumed += n
    this.cov.drained += n
  }

  /**
   * Producer.enqueueBatch (block policy): all-or-nothing. Nothing is visible before endGroup;
   * a refused record or `abort` rolls the whole group back. `packed`: the items go into one
   * group record (payload: u32 count + one byte or more per item), else one record each.
   */
  group(items: ReadonlyArray<{ len: number; raw: boolean }>, abort: boolean, packed: boolean): void {
    const start = this.writer.beginGroup()
    if (this.pending > 0) this.#modelPublish()
    same(start, this.wpos, 'group start')
    const savedWpos = this.wpos
    const savedCount = this.records.length
    const records = packed
      ? [{ len: 4 + items.reduce((sum, it) => sum + Math.max(1, it.len), 0), raw: false, n: items.length }]
      : items.map((it) => ({ ...it, n: 0 }))
    let ok = true
    for (const rec of records) {
      const p = this.place(rec.len)
      if (!this.fits(p)) {
        same(this.writer.reserve(rec.len, rec.raw, rec.n > 0), -1, 'reserve() over the hard limit')
        this.cov.refused++
        ok = false
        break
      }
      this.#accepted(this.writer.reserve(rec.len, rec.raw, rec.n > 0), rec.len, rec.raw, p, rec.n)
      // Still invisible to the consumer.
      same(this.writeSlot, this.pubPos, 'WRITE slot')
    }
    const keep = ok && !abort
    this.writer.endGroup(start, keep, items.length)
    if (keep) {
      this.#modelPublish()
      this.cov.groupsKept++
    } else {
      this.#rollBack(savedWpos, savedCount)
    }
  }

  /** Invariants that hold between any two steps. */
  check(): void {
    const read = this.readSlot
    same(this.writeSlot, this.pubPos, 'WRITE slot')
    const used = (this.wpos - read) >>> 0
    same(this.writer.usedBytes(), used, 'writer.usedBytes()')
    if (used > this.limit) expect.fail(`${used} bytes in use, over the ${this.limit}-byte limit`)
    same(this.reader.usedBytes(), (this.pubPos - read) >>> 0, 'reader.usedBytes()')
    same(this.reader.isEmpty(), this.head === this.published, 'reader.isEmpty()')
    if (this.head === this.published) {
      same(read, this.pubPos, 'READ of an empty lane')
    } else {
      // READ sits on the next record's header or on the WRAP marker just before it.
      const rec = this.records[this.head]!
      if (read !== rec.pos && read !== rec.wrapPos) expect([rec.pos, rec.wrapPos]).toContain(read)
    }
    same(this.writer.enqueued, this.totalItems, 'writer.enqueued')
    same(this.writer.droppedOldest, this.evicted, 'writer.droppedOldest')
    same(Number(Atomics.load(this.u64, LaneCounter.CONSUMED)), this.consumed, 'CONSUMED counter')
    // Conservation: every item before `head` was consumed or evicted, as the lane's own
    // counters say (checked above); the rest is still in the lane.
    same(this.evicted + this.consumed, this.headItems, 'evicted + consumed')
  }

  /** Publishes and drains everything left; every record must have come out or been evicted. */
  finish(): void {
    this.publish()
    this.check()
    while (this.head < this.published) this.drain(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, true, 0)
    this.check()
    same(this.reader.isEmpty(), true, 'reader.isEmpty() at the end')
    same(this.consumed + this.evicted, this.totalItems, 'consumed + evicted == written')
  }
}

import { decodeItem, sharedUnpackr } from '../codec/decode.ts'
import { arrayElements } from '../codec/msgpack-scan.ts'
import { ItemDecodeError } from '../errors.ts'
import { Record, recordSize } from '../ring/layout.ts'

/**
 * A batch is a run of ring records (ring/layout.ts) with no WRAP markers, in
 * the batch record format of @vinequeue/wal/batch-records (u32 header:
 * length | RAW_FLAG (enqueueRaw) | GROUP_FLAG (enqueueBatch: u32 count + one
 * msgpack array); padded to 4 bytes). Items are numbered across records in
 * order; a group holds items index..index+count-1. Batches live in pooled
 * shared slabs (pipeline/slab-pool.ts) and are read in place by the sender
 * thread.
 */

/**
 * Calls `fn(start, length, raw, index, group)` for each record of `bytes`
 * (`start`/`length`: the payload; for a group, its count word and array).
 * Returns the number of records.
 */
export function forEachRecord(
  bytes: Uint8Array,
  fn: (start: number, length: number, raw: boolean, index: number, group: boolean) => void,
): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let pos = 0
  let index = 0
  while (pos < bytes.byteLength) {
    const header = view.getUint32(pos, true)
    const length = header & Record.LENGTH_MASK
    fn(
      pos + Record.HEADER_BYTES,
      length,
      (header & Record.RAW_FLAG) !== 0,
      index++,
      header >= Record.GROUP_FLAG,
    )
    pos += recordSize(length)
  }
  return index
}

/** One item's encoded bytes inside a batch. */
interface ItemSlice {
  readonly start: number
  readonly end: number
  readonly raw: boolean
}

/**
 * The encoded bytes of every item, groups split into their elements. The
 * element boundaries come from a scan of the msgpack framing, not from
 * decoding, so an item no thread can decode still has its own bytes.
 */
export function itemSlices(bytes: Uint8Array): ItemSlice[] {
  const out: ItemSlice[] = []
  forEachRecord(bytes, (start, length, raw, _index, group) => {
    if (!group) {
      out.push({ start, end: start + length, raw })
      return
    }
    for (const [s, e] of arrayElements(bytes, start + 4, start + length))
      out.push({ start: s, end: e, raw: false })
  })
  return out
}

function writeArrayHeader(dst: Uint8Array, at: number, n: number): number {
  if (n < 16) {
    dst[at] = 0x90 | n
    return 1
  }
  if (n < 0x10000) {
    dst[at] = 0xdc
    dst[at + 1] = n >>> 8
    dst[at + 2] = n & 0xff
    return 3
  }
  dst[at] = 0xdd
  new DataView(dst.buffer, dst.byteOffset + at + 1, 4).setUint32(0, n)
  return 5
}

/**
 * Copies the items whose index is in `keep` (ascending) into a new framed
 * batch: single records as they are, groups whole when every item stays, or
 * rebuilt from the kept elements' bytes (no re-encoding). Never larger than
 * the input.
 */
export function extractRecords(bytes: Uint8Array, keep: readonly number[]): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const out = new Uint8Array(bytes.byteLength)
  const outView = new DataView(out.buffer)
  let o = 0
  let k = 0
  let first = 0 // index of the record's first item
  let pos = 0
  while (pos < bytes.byteLength && k < keep.length) {
    const header = view.getUint32(pos, true)
    const length = header & Record.LENGTH_MASK
    const size = recordSize(length)
    const group = header >= Record.GROUP_FLAG
    const count = group ? view.getUint32(pos + Record.HEADER_BYTES, true) : 1
    let kept = 0
    while (k + kept < keep.length && keep[k + kept]! < first + count) kept++
    if (kept === count) {
      out.set(bytes.subarray(pos, pos + size), o)
      o += size
    } else if (kept > 0) {
      // Part of a group: a smaller group of the kept elements.
      const slices = itemSlices(bytes.subarray(pos, pos + size))
      const p = o + Record.HEADER_BYTES
      outView.setUint32(p, kept, true)
      let w = p + 4 + writeArrayHeader(out, p + 4, kept)
      for (let i = 0; i < kept; i++) {
        const s = slices[keep[k + i]! - first]!
        out.set(bytes.subarray(pos + s.start, pos + s.end), w)
        w += s.end - s.start
      }
      outView.setUint32(o, (Record.GROUP_FLAG | (w - p)) >>> 0, true)
      o += recordSize(w - p)
    }
    k += kept
    first += count
    pos += size
  }
  return out.subarray(0, o)
}

/**
 * Keeps only the items whose index is in `keep` (ascending), moved to the
 * front of `bytes`; returns the new byte length. Used to retry failed items.
 */
export function compactRecords(bytes: Uint8Array, keep: readonly number[]): number {
  const kept = extractRecords(bytes, keep)
  bytes.set(kept)
  return kept.byteLength
}

/** Joins framed batches into one (records are self-delimiting). */
export function concatBatches(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.byteLength, 0))
  let off = 0
  for (const p of parts) {
    out.set(p, off)
    off += p.byteLength
  }
  return out
}

/**
 * What a sender receives: `count` items, framed in `bytes`. Valid until the
 * send settles — copy anything kept beyond that.
 */
export class Batch {
  /** Number of items. */
  readonly count: number
  /** The framed records (see batch-format.ts). */
  readonly bytes: Uint8Array
  /**
   * Stable across retries of the same batch. With a WAL holding the batch:
   * the log sequence number of its first item (≥ 0), the same when the batch
   * is re-delivered after a crash or a restart, never shared by two batches
   * of one log. Otherwise (no WAL, spill mode's batches sent from memory): a
   * negative number, unique within one run of the queue only.
   */
  readonly id: number
  /**
   * `id` made unique across logs, processes and restarts: `<scope>:<id>`,
   * scope 32 hex digits — the log's id (kept in its directory) for a batch
   * the log holds, a random id of this run of the queue otherwise. What an
   * idempotency key carries (the HTTP sender's `idempotencyKey`); see the
   * core README, "Batch identity".
   */
  readonly key: string
  #items: unknown[] | undefined
  #entries: BatchEntry[] | undefined

  constructor(bytes: Uint8Array, count: number, id = 0, key = `:${id}`) {
    this.bytes = bytes
    this.count = count
    this.id = id
    this.key = key
  }

  /**
   * The encoded payload of every item, in `items()` order: msgpack bytes, or
   * the caller's own bytes for items given to `enqueueRaw` (`raw: true`).
   * Views into the batch.
   */
  payloads(): Array<{ bytes: Uint8Array; raw: boolean }> {
    return itemSlices(this.bytes).map((s) => ({ bytes: this.bytes.subarray(s.start, s.end), raw: s.raw }))
  }

  /**
   * The items of `items()`, each with its raw flag: a raw item and a decoded
   * msgpack `bin` value are both Uint8Arrays there, and only the record
   * header tells them apart.
   * @throws ItemDecodeError as `items()` does (same indexes).
   */
  entries(): BatchEntry[] {
    if (this.#entries) return this.#entries
    const items = this.items()
    const entries: BatchEntry[] = new Array(items.length)
    let at = 0
    forEachRecord(this.bytes, (start, _length, raw, _index, group) => {
      if (!group) {
        entries[at] = { value: items[at], raw }
        at++
        return
      }
      const count = new DataView(this.bytes.buffer, this.bytes.byteOffset + start, 4).getUint32(0, true)
      for (const end = at + count; at < end; at++) entries[at] = { value: items[at], raw: false }
    })
    this.#entries = entries
    return entries
  }

  /**
   * The decoded items, in enqueue order per producer. Items given to
   * `enqueueRaw` come back as their Uint8Array bytes (a copy).
   * @throws ItemDecodeError when some items cannot be decoded (`indexes`):
   *   let it propagate — the send then fails, those items are dead-lettered
   *   with their raw bytes and the others are retried without them.
   */
  items(): unknown[] {
    if (this.#items) return this.#items
    const undecodable = undecodableByBatch.get(this)
    if (undecodable) throw decodeError(undecodable, this.count)
    const u = sharedUnpackr()
    const items: unknown[] = []
    const failures = new Map<number, string>()
    const fail = (err: unknown): void => {
      failures.set(items.length, reasonOf(err))
      items.push(undefined)
    }
    // Decoded from a copy of the batch, not from the shared slab: as fast
    // or faster here (note `codec.shared_decode` in packages/bench/README.md).
    const bytes = this.bytes.buffer instanceof SharedArrayBuffer ? this.bytes.slice() : this.bytes
    forEachRecord(bytes, (start, length, raw, _index, group) => {
      if (raw) {
        items.push(bytes.slice(start, start + length))
        return
      }
      if (!group) {
        try {
          items.push(decodeItem(bytes.subarray(start, start + length)))
        } catch (err) {
          fail(err)
        }
        return
      }
      try {
        const values = u.unpack(bytes.subarray(start + 4, start + length)) as unknown[]
        for (let i = 0; i < values.length; i++) items.push(values[i])
        return
      } catch {}
      // One element at a time, to find the ones that do not decode.
      let elements: Array<[number, number]>
      try {
        elements = arrayElements(bytes, start + 4, start + length)
      } catch (err) {
        // Unsplittable: all of the group's items fail together (extractRecords keeps it whole).
        const count = new DataView(bytes.buffer, bytes.byteOffset + start, 4).getUint32(0, true)
        for (let i = 0; i < count; i++) fail(err)
        return
      }
      for (const [s, e] of elements) {
        try {
          items.push(decodeItem(bytes.subarray(s, e)))
        } catch (err) {
          fail(err)
        }
      }
    })
    if (failures.size > 0) {
      undecodableByBatch.set(this, failures)
      throw decodeError(failures, this.count)
    }
    this.#items = items
    return items
  }
}

/** One item of a batch with how it was enqueued (see `Batch.entries()`). */
export interface BatchEntry {
  /** The decoded item; for a raw item, its bytes (a copy). */
  readonly value: unknown
  /**
   * true for an item given to `enqueueRaw`: `value` is the caller's own
   * encoding. false for a decoded item, even one that is a Uint8Array (a
   * msgpack `bin` value).
   */
  readonly raw: boolean
}

/** Items `Batch.items()` could not decode, by index, with the reason. */
const undecodableByBatch = new WeakMap<Batch, ReadonlyMap<number, string>>()

/**
 * The items of `batch` that its `items()` found undecodable (index → why),
 * or undefined when it did not (or was not called).
 */
export function undecodableItems(batch: Batch): ReadonlyMap<number, string> | undefined {
  return undecodableByBatch.get(batch)
}

function reasonOf(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err)
}

function decodeError(failures: ReadonlyMap<number, string>, count: number): ItemDecodeError {
  const indexes = [...failures.keys()]
  const shown = indexes.slice(0, 3).map((i) => `item ${i}: ${failures.get(i)}`)
  const more = indexes.length > 3 ? `; and ${indexes.length - 3} more` : ''
  return new ItemDecodeError(
    `${indexes.length} of the batch's ${count} items cannot be decoded (${shown.join('; ')}${more})`,
    { indexes },
  )
}

const kUndecodable: unique symbol = Symbol.for('vinequeue.undecodable-item')

/**
 * Stands for an item that cannot be decoded, where decoded items are handed
 * out without a sender to fail (dead letters, `stop().undelivered()`): its
 * msgpack bytes as they were enqueued and why they do not decode.
 * `instanceof` works across duplicate installs (a `Symbol.for` brand).
 */
export class UndecodableItem {
  /** The item's encoded bytes (a copy). */
  readonly raw: Uint8Array
  /** Why it does not decode. */
  readonly decodeError: string

  constructor(raw: Uint8Array, decodeError: string) {
    this.raw = raw
    this.decodeError = decodeError
    Object.defineProperty(this, kUndecodable, { value: true })
  }

  static [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as any)[kUndecodable] === true
  }
}

/**
 * The items of a framed batch, decoded one by one: an item that does not
 * decode becomes an UndecodableItem instead of failing the others. Never
 * throws on the items' content.
 */
export function decodeItemsLenient(bytes: Uint8Array, count: number): unknown[] {
  const batch = new Batch(bytes, count)
  try {
    return batch.items()
  } catch {}
  const own = bytes.buffer instanceof SharedArrayBuffer ? bytes.slice() : bytes
  const out: unknown[] = []
  forEachRecord(own, (start, length, raw, _index, group) => {
    if (raw) {
      out.push(own.slice(start, start + length))
      return
    }
    let slices: Array<[number, number]>
    try {
      slices = group ? arrayElements(own, start + 4, start + length) : [[start, start + length]]
    } catch (err) {
      const n = new DataView(own.buffer, own.byteOffset + start, 4).getUint32(0, true)
      const why = `a group record of ${n} items that cannot be split (${reasonOf(err)})`
      for (let i = 0; i < n; i++) out.push(new UndecodableItem(own.slice(start + 4, start + length), why))
      return
    }
    for (const [s, e] of slices) {
      try {
        out.push(decodeItem(own.subarray(s, e)))
      } catch (err) {
        out.push(new UndecodableItem(own.slice(s, e), reasonOf(err)))
      }
    }
  })
  return out
}

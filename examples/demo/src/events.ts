import { crc32 } from 'node:zlib'

/**
 * The demo's record: a small analytics event. Every field is a pure function
 * of `id`, so the verifier can rebuild exactly what was sent without keeping
 * a copy of it. A fraction and, in one event of 64, non-ASCII text make a
 * lossy number or a mangled byte show up in the checksum.
 */
export interface DemoEvent {
  readonly id: number
  readonly userId: number
  readonly event: string
  readonly ts: number
  readonly amount: number
  readonly city: string
  readonly data: { readonly path: string; readonly tags: readonly string[] }
}

const kinds = ['page_view', 'click', 'add_to_cart', 'purchase', 'login'] as const
const cities = ['Lisbon', 'Oslo', 'Kyoto', 'Quito', 'Nairobi', 'Perth', 'Lima'] as const
const farCities = ['Zürich', 'Łódź', '東京', 'São Paulo'] as const
const BASE_TS = Date.UTC(2025, 0, 1)

/** Event `id` (0 … total-1). */
export function makeEvent(id: number): DemoEvent {
  return {
    id,
    userId: (id * 7919) % 100_000,
    event: kinds[id % kinds.length]!,
    ts: BASE_TS + id,
    amount: (id % 100_000) / 100,
    city: id % 64 === 63 ? farCities[(id >> 6) % farCities.length]! : cities[id % cities.length]!,
    data: { path: `/products/${id % 500}`, tags: id % 3 === 0 ? ['promo', 'mobile'] : ['web'] },
  }
}

/**
 * The checksum of an event's content: CRC-32 of its JSON text as UTF-8 bytes
 * (the sink takes it over the NDJSON line it received, the verifier over
 * `JSON.stringify(makeEvent(id))`; the sender's JSON.stringify of the item it
 * decoded yields the same text only if every field survived the trip).
 */
export function checksum(json: string | Uint8Array): number {
  return crc32(json)
}

/** One producer's share of the ids: `first` … `first + count - 1`. */
export interface Share {
  readonly ref: string
  readonly first: number
  readonly count: number
}

/** Splits ids 0 … total-1 into contiguous shares, as even as possible. */
export function shares(total: number, refs: readonly string[]): Share[] {
  let first = 0
  return refs.map((ref, i) => {
    const count = Math.floor(total / refs.length) + (i < total % refs.length ? 1 : 0)
    const share = { ref, first, count }
    first += count
    return share
  })
}

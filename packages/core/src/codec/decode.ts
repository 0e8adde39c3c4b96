import type { Unpackr } from 'msgpackr'
import { createUnpackr } from './codec.ts'

let objects: Unpackr | undefined
let maps: Unpackr | undefined

/** The queue's decoder (maps as plain objects), shared by everything on this thread. */
export function sharedUnpackr(): Unpackr {
  objects ??= createUnpackr()
  return objects
}

/**
 * Decodes one item. msgpackr writes a Map with any keys, but its decoder
 * with maps as objects (what items need: objects are maps on the wire)
 * refuses a map whose key is not a string, number, boolean, BigInt, null or
 * undefined. Such an item is decoded again with maps as Maps and rebuilt:
 * every map comes back as the first pass would have made it, except those
 * with such a key, which come back as Maps. The second pass runs only for
 * these items.
 * @throws what msgpackr throws when the bytes cannot be decoded at all
 *   (e.g. a RangeError when the item is too deep for this thread's stack).
 */
export function decodeItem(bytes: Uint8Array): unknown {
  try {
    return sharedUnpackr().unpack(bytes)
  } catch (err) {
    // A stack overflow would only overflow again.
    if (err instanceof RangeError) throw err
    let value: unknown
    try {
      maps ??= createUnpackr({ mapsAsObjects: false })
      value = maps.unpack(bytes)
    } catch {
      throw err
    }
    return fromMaps(value)
  }
}

/** Keys msgpackr turns into property names (its asSafeString). */
function isKeyPrimitive(key: unknown): boolean {
  const t = typeof key
  return t === 'string' || t === 'number' || t === 'boolean' || t === 'bigint' || key == null
}

/** Maps decoded as Maps back to what the object decoder makes of them (see decodeItem). */
function fromMaps(value: unknown): unknown {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = fromMaps(value[i])
    return value
  }
  if (!(value instanceof Map)) return value
  let plain = true
  for (const key of value.keys()) {
    if (!isKeyPrimitive(key)) {
      plain = false
      break
    }
  }
  if (!plain) {
    const out = new Map<unknown, unknown>()
    for (const [k, v] of value) out.set(fromMaps(k), fromMaps(v))
    return out
  }
  const out: Record<string, unknown> = {}
  for (const [k, v] of value) {
    const key = String(k)
    // As msgpackr does: never let a key set the prototype.
    out[key === '__proto__' ? '__proto_' : key] = fromMaps(v)
  }
  return out
}

import { isMainThread } from 'node:worker_threads'
import { nestsDeeperThan } from './msgpack-scan.ts'

/**
 * The deepest nesting of arrays and objects an item may have where it is
 * checked (see SCAN_DEPTH). msgpackr encodes and decodes recursively, and a
 * thread's stack decides how deep it gets; its encoder needs about twice the
 * stack per level its decoder does (note `codec.item_depth` in
 * packages/bench/README.md): with Node's default stacks the main thread
 * (~1 MB) encodes somewhat over 1,000 levels and decodes about three times
 * as many, a worker thread (4 MB) several thousand both ways. So an item a producer worker encodes might decode
 * nowhere on the main thread. 1,000 is about what the main thread can encode
 * itself, and leaves its decoder (and a sender calling `items()` from deep
 * in its own calls) more than half its stack; no event or log record comes
 * near it.
 */
export const MAX_ITEM_DEPTH = 1000

/**
 * Whether this thread's items are scanned for their depth. Not on the main
 * thread with Node's default stack: whatever its encoder manages decodes on
 * every thread of the queue (the figures above), and deeper items fail to
 * encode there (a stack overflow: EncodeError), so the scan would cost and
 * catch nothing. A worker thread, or a main thread run with `--stack-size`,
 * can encode what the main thread cannot decode: its items longer than
 * MAX_ITEM_DEPTH bytes (each level takes a byte) are scanned.
 */
export const SCAN_DEPTH: boolean = !isMainThread || process.execArgv.some((a) => a.startsWith('--stack-size'))

/**
 * Why encoded bytes nest deeper than MAX_ITEM_DEPTH + `extra` (extra 1: a
 * group record's array around its items), or undefined. Each level takes at
 * least one byte, so shorter values are never scanned: the hot path pays one
 * comparison for usual items.
 */
export function depthProblem(bytes: Uint8Array, start: number, end: number, extra = 0): string | undefined {
  const limit = MAX_ITEM_DEPTH + extra
  if (end - start <= limit) return undefined
  if (!nestsDeeperThan(bytes, start, end, limit)) return undefined
  return `it nests arrays/objects more than ${MAX_ITEM_DEPTH} levels deep (the queue's main thread might not decode it)`
}

/** Where the strict check failed: keys from the item down, filled while unwinding (only on failure). */
const failPath: string[] = []

/**
 * `strictItems`: why `item` would not come back from the queue as the same
 * data, or undefined. Accepted: strings, numbers (-0 comes back as 0),
 * booleans, null, undefined, BigInts (64-bit), plain objects (own enumerable
 * string keys; null-prototype ones come back with Object.prototype), arrays
 * (holes come back as undefined), Dates, Uint8Arrays and Buffers (back as
 * Uint8Arrays of the same bytes). Everything else changes on the way (see
 * the core README's table). Not checked: symbol-keyed and non-enumerable
 * properties (dropped, as JSON drops them) and extra properties on arrays.
 */
export function strictProblem(item: unknown): string | undefined {
  failPath.length = 0
  const what = check(item, 0)
  if (what === undefined) return undefined
  const where = failPath.reverse().join('')
  failPath.length = 0
  return `${where === '' ? 'the item' : `item${where}`} is ${what}`
}

function check(value: unknown, depth: number): string | undefined {
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'undefined':
    case 'bigint': // beyond 64 bits msgpackr refuses it (EncodeError either way)
      return undefined
    case 'function':
      return 'a function (comes back as undefined)'
    case 'symbol':
      return 'a symbol (msgpack has no symbols)'
  }
  if (value === null) return undefined
  if (depth >= MAX_ITEM_DEPTH) return `nested more than ${MAX_ITEM_DEPTH} levels deep (or circular)`
  const proto = Object.getPrototypeOf(value)
  if (proto === Array.prototype) {
    const array = value as unknown[]
    for (let i = 0; i < array.length; i++) {
      const what = check(array[i], depth + 1)
      if (what !== undefined) {
        failPath.push(`[${i}]`)
        return what
      }
    }
    return undefined
  }
  if (proto === Object.prototype || proto === null) {
    const object = value as Record<string, unknown>
    for (const key in object) {
      if (key === '__proto__') {
        failPath.push(`[${JSON.stringify(key)}]`)
        return 'a "__proto__" key (comes back renamed "__proto_")'
      }
      const what = check(object[key], depth + 1)
      if (what !== undefined) {
        failPath.push(/^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`)
        return what
      }
    }
    return undefined
  }
  if (proto === Date.prototype || proto === Uint8Array.prototype || proto === Buffer.prototype)
    return undefined
  return changed(value as object)
}

/** How an object that is not plain data changes on the way. */
function changed(value: object): string {
  if (value instanceof Map) return 'a Map (comes back as a plain object, keys as strings)'
  if (value instanceof Set) return 'a Set (comes back as an array)'
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) {
    return `a ${value.constructor?.name ?? 'binary view'} (comes back as a Uint8Array of its bytes)`
  }
  if (value instanceof Date) return 'a Date subclass (comes back as a Date)'
  if (value instanceof RegExp) return 'a RegExp (comes back as [source, flags])'
  if (value instanceof Error) return 'an Error (comes back as [name, message, cause])'
  const name = value.constructor?.name || 'a class'
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    return `an instance of ${name} (comes back as what its toJSON() returns)`
  }
  return `an instance of ${name} (comes back as a plain object of its own fields)`
}

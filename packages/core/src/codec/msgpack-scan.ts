/**
 * Walks msgpack bytes without decoding them: where a value ends (the items
 * of a group record) and how deeply it nests. Nothing here recurses, so an
 * item too deep for any decoder's stack is still measured and split off.
 *
 * The framing follows msgpackr's reader for what the queue's encoder writes
 * (codec.ts: no records, no bundled strings): besides the msgpack spec, an
 * extension of type 0x65 (Error), 0x73 (Set), 0x78 (RegExp) or 0x69 (object
 * id) is followed by one more value that belongs to it, as msgpackr reads
 * it. Record definitions (0x72) and bundled strings (0x62) need msgpackr's
 * state and are refused.
 */

/** msgpackr extension types whose reader consumes the value after the extension. */
function takesNextValue(type: number): boolean {
  return type === 0x65 || type === 0x73 || type === 0x78 || type === 0x69
}

function truncated(at: number): RangeError {
  return new RangeError(`msgpack value truncated at byte ${at}`)
}

function u8(b: Uint8Array, at: number, end: number): number {
  if (at >= end) throw truncated(at)
  return b[at]!
}

function u16(b: Uint8Array, at: number, end: number): number {
  return (u8(b, at, end) << 8) | u8(b, at + 1, end)
}

function u32(b: Uint8Array, at: number, end: number): number {
  return (
    u8(b, at, end) * 0x1000000 + ((u8(b, at + 1, end) << 16) | (u8(b, at + 2, end) << 8) | u8(b, at + 3, end))
  )
}

/** An extension whose type byte is at `typeAt`: where its data ends; sets `out.children`. */
function ext(
  b: Uint8Array,
  typeAt: number,
  dataBytes: number,
  end: number,
  out: { children: number },
): number {
  const type = u8(b, typeAt, end)
  if (takesNextValue(type)) out.children = 1
  else if (type === 0x72 || type === 0x62)
    throw new RangeError(
      `msgpackr record or bundle extension at byte ${typeAt - 1}: not written by the queue`,
    )
  return typeAt + 1 + dataBytes
}

/**
 * Reads the token at `pos` and returns where its own bytes end; `children`
 * receives how many values follow that belong to it (array elements, map
 * keys and values, an extension's value).
 */
function token(b: Uint8Array, pos: number, end: number, out: { children: number }): number {
  const t = u8(b, pos, end)
  out.children = 0
  if (t < 0x80 || t >= 0xe0) return pos + 1 // fixint
  if (t < 0x90) {
    out.children = 2 * (t & 0x0f)
    return pos + 1
  }
  if (t < 0xa0) {
    out.children = t & 0x0f
    return pos + 1
  }
  if (t < 0xc0) return pos + 1 + (t & 0x1f) // fixstr
  switch (t) {
    case 0xc0: // nil
    case 0xc1: // never used by msgpack; msgpackr reads it as one byte
    case 0xc2: // false
    case 0xc3: // true
      return pos + 1
    case 0xc4: // bin 8
    case 0xd9: // str 8
      return pos + 2 + u8(b, pos + 1, end)
    case 0xc5: // bin 16
    case 0xda: // str 16
      return pos + 3 + u16(b, pos + 1, end)
    case 0xc6: // bin 32
    case 0xdb: // str 32
      return pos + 5 + u32(b, pos + 1, end)
    case 0xc7: // ext 8
      return ext(b, pos + 2, u8(b, pos + 1, end), end, out)
    case 0xc8: // ext 16
      return ext(b, pos + 3, u16(b, pos + 1, end), end, out)
    case 0xc9: // ext 32
      return ext(b, pos + 5, u32(b, pos + 1, end), end, out)
    case 0xca: // float 32
      return pos + 5
    case 0xcb: // float 64
      return pos + 9
    case 0xcc: // uint 8
    case 0xd0: // int 8
      return pos + 2
    case 0xcd: // uint 16
    case 0xd1: // int 16
      return pos + 3
    case 0xce: // uint 32
    case 0xd2: // int 32
      return pos + 5
    case 0xcf: // uint 64
    case 0xd3: // int 64
      return pos + 9
    case 0xd4: // fixext 1
      return ext(b, pos + 1, 1, end, out)
    case 0xd5: // fixext 2
      return ext(b, pos + 1, 2, end, out)
    case 0xd6: // fixext 4
      return ext(b, pos + 1, 4, end, out)
    case 0xd7: // fixext 8
      return ext(b, pos + 1, 8, end, out)
    case 0xd8: // fixext 16
      return ext(b, pos + 1, 16, end, out)
    case 0xdc: // array 16
      out.children = u16(b, pos + 1, end)
      return pos + 3
    case 0xdd: // array 32
      out.children = u32(b, pos + 1, end)
      return pos + 5
    case 0xde: // map 16
      out.children = 2 * u16(b, pos + 1, end)
      return pos + 3
    default: // 0xdf map 32
      out.children = 2 * u32(b, pos + 1, end)
      return pos + 5
  }
}

/**
 * Where the value starting at `pos` ends (exclusive).
 * @throws RangeError when it runs past `end` or uses a format the queue never writes.
 */
export function skipValue(b: Uint8Array, pos: number, end: number): number {
  const out = { children: 0 }
  // Values still to skip: a container adds its children, so one counter suffices.
  let pending = 1
  while (pending > 0) {
    const size = pos < end ? FIXED_SIZE[b[pos]!]! : 0
    if (size !== 0) pos += size
    else {
      pos = token(b, pos, end, out)
      pending += out.children
    }
    pending--
  }
  if (pos > end) throw truncated(end)
  return pos
}

/**
 * The start and end of every element of the msgpack array at `pos` (a group
 * record's array), found without decoding them.
 */
export function arrayElements(b: Uint8Array, pos: number, end: number): Array<[number, number]> {
  const out = { children: 0 }
  const t = b[pos]
  if (t === undefined || !((t >= 0x90 && t <= 0x9f) || t === 0xdc || t === 0xdd)) {
    throw new RangeError(`expected a msgpack array at byte ${pos}, found 0x${(t ?? 0).toString(16)}`)
  }
  let at = token(b, pos, end, out)
  const slices: Array<[number, number]> = []
  for (let i = 0; i < out.children; i++) {
    const next = skipValue(b, at, end)
    slices.push([at, next])
    at = next
  }
  return slices
}

/**
 * Bytes taken by a token that is whole in itself (fixint, fixstr, nil,
 * booleans, numbers), by its first byte; 0 for containers, extensions and
 * variable-length strings and binaries.
 */
const FIXED_SIZE: Uint8Array = (() => {
  const size = new Uint8Array(256)
  for (let t = 0x00; t < 0x80; t++) size[t] = 1
  for (let t = 0xa0; t < 0xc0; t++) size[t] = 1 + (t & 0x1f)
  for (let t = 0xe0; t < 0x100; t++) size[t] = 1
  for (const [t, n] of [
    [0xc0, 1],
    [0xc1, 1],
    [0xc2, 1],
    [0xc3, 1],
    [0xca, 5],
    [0xcb, 9],
    [0xcc, 2],
    [0xcd, 3],
    [0xce, 5],
    [0xcf, 9],
    [0xd0, 2],
    [0xd1, 3],
    [0xd2, 5],
    [0xd3, 9],
  ] as const)
    size[t] = n
  return size
})()

/**
 * Per-level counts of nestsDeeperThan, kept between calls (it runs on the
 * enqueue path). Int32: a well-formed item of at most maxItemBytes
 * (≤ 256 MiB) has fewer than 2^31 children per container.
 */
const LEVELS_MAX = 4096
const levels = new Int32Array(LEVELS_MAX + 1)

/**
 * True when the value at `start` nests containers (arrays, maps, extensions
 * that wrap a value) more than `limit` deep; `{ a: 1 }` is 1 deep. The value
 * must be well-formed up to `end` (it was just encoded).
 *
 * On the enqueue path for items longer than the limit and for every
 * enqueueBatch array: the common tokens are handled inline, which makes the
 * scan a small fraction of packing the array (note `msgpack_scan.depth` in
 * packages/bench/README.md).
 */
export function nestsDeeperThan(bytes: Uint8Array, start: number, end: number, limit: number): boolean {
  if (limit > LEVELS_MAX) throw new RangeError(`nestsDeeperThan: limit ${limit} over ${LEVELS_MAX}`)
  // One element type for the loop: a Buffer and a plain Uint8Array would make its reads polymorphic.
  const b = Buffer.isBuffer(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : bytes
  const out = { children: 0 }
  // `left`: values still to read in the innermost open container (1 at the
  // top: the value itself); `levels[0..depth)`: the same for the containers
  // around it.
  let left = 1
  let depth = 0
  let pos = start
  while (pos < end) {
    if (left === 0) {
      do {
        if (depth === 0) return false
        left = levels[--depth]!
      } while (left === 0)
    }
    left--
    const t = b[pos]!
    const size = FIXED_SIZE[t]!
    if (size !== 0) {
      pos += size
      continue
    }
    let children: number
    if (t < 0x90) {
      children = (t & 0x0f) << 1
      pos++
    } else if (t < 0xa0) {
      children = t & 0x0f
      pos++
    } else if (t === 0xd9) {
      pos += 2 + b[pos + 1]!
      continue
    } else {
      pos = token(b, pos, end, out)
      if (!((t >= 0xdc && t <= 0xdf) || out.children > 0)) continue
      children = out.children
    }
    if (depth >= limit) return true
    levels[depth++] = left
    left = children
  }
  return false
}

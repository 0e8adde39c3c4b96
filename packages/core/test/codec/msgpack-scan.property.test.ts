/**
 * The msgpack framing scan (src/codec/msgpack-scan.ts) against msgpackr
 * itself: for any value the queue's encoder writes, the scan must find the
 * same value boundaries msgpackr's reader does and the same nesting depth;
 * and decodeItem's second pass (src/codec/decode.ts) must give back maps
 * with non-string keys as Maps and everything else as the first pass does.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createPackr, createUnpackr } from '../../src/codec/codec.ts'
import { decodeItem } from '../../src/codec/decode.ts'
import { arrayElements, nestsDeeperThan, skipValue } from '../../src/codec/msgpack-scan.ts'

const packr = createPackr()
const asMaps = createUnpackr({ mapsAsObjects: false })
const plain = createUnpackr()

/** Values of every kind msgpackr writes for the queue (some it cannot encode are filtered out). */
const anything = fc.anything({
  maxDepth: 5,
  withMap: true,
  withSet: true,
  withDate: true,
  withTypedArray: true,
  withBigInt: true,
  withNullPrototype: true,
  withSparseArray: true,
  withBoxedValues: true,
})

function encode(value: unknown): Uint8Array | undefined {
  try {
    return packr.pack(value).slice()
  } catch {
    return undefined // e.g. a BigInt over 64 bits: enqueue refuses it (EncodeError)
  }
}

/** Nesting depth of a decoded value (maps decoded as Maps): arrays and maps, keys included. */
function depthOf(value: unknown): number {
  if (Array.isArray(value)) return 1 + Math.max(0, ...value.map(depthOf))
  if (value instanceof Map)
    return 1 + Math.max(0, ...[...value].map(([k, v]) => Math.max(depthOf(k), depthOf(v))))
  return 0
}

describe('msgpack framing scan', () => {
  it('skipValue ends where the value ends', () => {
    fc.assert(
      fc.property(anything, (value) => {
        const bytes = encode(value)
        fc.pre(bytes !== undefined)
        expect(skipValue(bytes!, 0, bytes!.length)).toBe(bytes!.length)
      }),
      { numRuns: 500 },
    )
  })

  it("arrayElements finds the boundaries msgpackr's sequential reader finds", () => {
    fc.assert(
      fc.property(fc.array(anything, { maxLength: 20 }), (values) => {
        const bytes = encode(values)
        fc.pre(bytes !== undefined)
        const header = bytes![0]! <= 0x9f ? 1 : bytes![0] === 0xdc ? 3 : 5
        const expected: Array<[number, number]> = []
        if (bytes!.length > header) {
          asMaps.unpackMultiple(bytes!.subarray(header), (_v: unknown, s?: number, e?: number) => {
            expected.push([header + s!, header + e!])
          })
        }
        expect(arrayElements(bytes!, 0, bytes!.length)).toEqual(expected)
      }),
      { numRuns: 300 },
    )
  })

  it('nestsDeeperThan agrees with the depth of the decoded value', () => {
    fc.assert(
      fc.property(anything, fc.integer({ min: 0, max: 6 }), (value, limit) => {
        const bytes = encode(value)
        fc.pre(bytes !== undefined)
        const depth = depthOf(asMaps.unpack(bytes!))
        expect(nestsDeeperThan(bytes!, 0, bytes!.length, limit)).toBe(depth > limit)
      }),
      { numRuns: 500 },
    )
  })

  it('measures thousands of levels without recursing, in arrays and maps', () => {
    for (const depth of [511, 512, 513, 3000, 50_000]) {
      // Written flat (this thread could not encode 50,000 levels): [{ a: [{ a: … 'leaf' }] }].
      const parts: number[] = []
      for (let i = 0; i < depth; i++) parts.push(...(i % 2 ? [0x81, 0xa1, 0x61] : [0x91]))
      parts.push(0xa4, 0x6c, 0x65, 0x61, 0x66)
      const bytes = new Uint8Array(parts)
      expect(skipValue(bytes, 0, bytes.length)).toBe(bytes.length)
      expect(nestsDeeperThan(bytes, 0, bytes.length, 512)).toBe(depth > 512)
      if (depth < 1000) expect(depthOf(asMaps.unpack(bytes))).toBe(depth)
    }
  })

  it('refuses truncated values', () => {
    const bytes = encode({ a: [1, 2, 'three'] })!
    for (let cut = 0; cut < bytes.length; cut++) {
      expect(() => skipValue(bytes.subarray(0, cut), 0, cut)).toThrow(RangeError)
    }
  })
})

describe('decodeItem', () => {
  it('decodes as the queue always did whatever the first pass can decode', () => {
    fc.assert(
      fc.property(anything, (value) => {
        const bytes = encode(value)
        fc.pre(bytes !== undefined)
        let expected: unknown
        try {
          expected = plain.unpack(bytes!)
        } catch {
          fc.pre(false)
        }
        expect(decodeItem(bytes!)).toStrictEqual(expected)
      }),
      { numRuns: 300 },
    )
  })

  it('gives back a map with a non-string key as a Map, the rest as plain objects', () => {
    const key = { k: [1, 2] }
    const value = {
      top: new Map<unknown, unknown>([
        [key, { inner: new Map([[1, 'one']]) }],
        ['s', 2],
      ]),
      list: [new Map<unknown, unknown>([[new Uint8Array([1]), 'bytes']])],
      __proto__x: 1,
    }
    const out = decodeItem(encode(value)!) as any
    expect(out.top).toBeInstanceOf(Map)
    const [[k, v], [s, two]] = [...out.top]
    expect(k).toStrictEqual({ k: [1, 2] })
    // A map whose keys are all primitive comes back as an object, as in the first pass.
    expect(v).toStrictEqual({ inner: { 1: 'one' } })
    expect([s, two]).toEqual(['s', 2])
    expect(out.list[0]).toBeInstanceOf(Map)
    expect([...out.list[0].keys()][0]).toEqual(Buffer.from([1]))
    expect(out.__proto__x).toBe(1)
  })

  it('never lets a "__proto__" key set the prototype (renamed as msgpackr does)', () => {
    const bytes = encode(new Map<unknown, unknown>([[[0], { ['__proto__']: 1 }]]))!
    const map = decodeItem(bytes) as Map<unknown, Record<string, unknown>>
    const inner = [...map.values()][0]!
    expect(Object.getPrototypeOf(inner)).toBe(Object.prototype)
    expect(inner.__proto_).toBe(1)
  })

  it('still throws for bytes that do not decode at all', () => {
    expect(() => decodeItem(new Uint8Array([0xd4, 0x05, 0x00]))).toThrow(/Unknown extension/)
  })
})

/**
 * Kafka wire primitives for the broker stand-in, written from the protocol
 * guide (https://kafka.apache.org/protocol) rather than borrowed from the
 * client under test, so that an encoding bug in the client is not mirrored
 * by the decoder that checks it.
 *
 * "Compact" types belong to flexible API versions (KIP-482): lengths are
 * unsigned varints holding length + 1 (0 = null), and every struct ends with
 * a tagged-field buffer.
 */

export class WireReader {
  readonly buf: Buffer
  pos: number

  constructor(buf: Buffer, pos = 0) {
    this.buf = buf
    this.pos = pos
  }

  get remaining(): number {
    return this.buf.length - this.pos
  }

  #need(n: number): void {
    if (this.pos + n > this.buf.length) {
      throw new RangeError(`truncated: need ${n} bytes at ${this.pos}, have ${this.buf.length - this.pos}`)
    }
  }

  int8(): number {
    this.#need(1)
    return this.buf.readInt8(this.pos++)
  }

  int16(): number {
    this.#need(2)
    const v = this.buf.readInt16BE(this.pos)
    this.pos += 2
    return v
  }

  int32(): number {
    this.#need(4)
    const v = this.buf.readInt32BE(this.pos)
    this.pos += 4
    return v
  }

  uint32(): number {
    this.#need(4)
    const v = this.buf.readUInt32BE(this.pos)
    this.pos += 4
    return v
  }

  int64(): bigint {
    this.#need(8)
    const v = this.buf.readBigInt64BE(this.pos)
    this.pos += 8
    return v
  }

  bool(): boolean {
    return this.int8() !== 0
  }

  bytes(n: number): Buffer {
    this.#need(n)
    const out = this.buf.subarray(this.pos, this.pos + n)
    this.pos += n
    return out
  }

  /** Unsigned LEB128, up to 64 bits. */
  uvarlong(): bigint {
    let result = 0n
    let shift = 0n
    for (;;) {
      this.#need(1)
      const b = this.buf[this.pos++]!
      result |= BigInt(b & 0x7f) << shift
      if ((b & 0x80) === 0) return result
      shift += 7n
      if (shift > 63n) throw new RangeError('varint longer than 10 bytes')
    }
  }

  uvarint(): number {
    return Number(this.uvarlong())
  }

  /** Zigzag-encoded signed varint (record fields). */
  varlong(): bigint {
    const u = this.uvarlong()
    return (u >> 1n) ^ -(u & 1n)
  }

  varint(): number {
    return Number(this.varlong())
  }

  /** STRING / NULLABLE_STRING: int16 length, -1 = null. */
  string16(): string | null {
    const n = this.int16()
    return n < 0 ? null : this.bytes(n).toString('utf8')
  }

  /** COMPACT_STRING / COMPACT_NULLABLE_STRING. */
  compactString(): string | null {
    const n = this.uvarint()
    return n === 0 ? null : this.bytes(n - 1).toString('utf8')
  }

  /** COMPACT_BYTES / COMPACT_RECORDS. */
  compactBytes(): Buffer | null {
    const n = this.uvarint()
    return n === 0 ? null : this.bytes(n - 1)
  }

  /** COMPACT_ARRAY: `read` is called once per element. */
  compactArray<T>(read: (r: WireReader) => T): T[] | null {
    const n = this.uvarint()
    if (n === 0) return null
    const out: T[] = []
    for (let i = 0; i < n - 1; i++) out.push(read(this))
    return out
  }

  /** ARRAY (non-flexible): int32 count, -1 = null. */
  array32<T>(read: (r: WireReader) => T): T[] | null {
    const n = this.int32()
    if (n < 0) return null
    const out: T[] = []
    for (let i = 0; i < n; i++) out.push(read(this))
    return out
  }

  uuid(): Buffer {
    return this.bytes(16)
  }

  /** Skips a tagged-field buffer (we understand no tags). */
  taggedFields(): void {
    const n = this.uvarint()
    for (let i = 0; i < n; i++) {
      this.uvarint() // tag
      this.bytes(this.uvarint())
    }
  }
}

export class WireWriter {
  readonly #chunks: Buffer[] = []
  #length = 0

  get length(): number {
    return this.#length
  }

  raw(buf: Buffer): this {
    this.#chunks.push(buf)
    this.#length += buf.length
    return this
  }

  int8(v: number): this {
    const b = Buffer.allocUnsafe(1)
    b.writeInt8(v)
    return this.raw(b)
  }

  int16(v: number): this {
    const b = Buffer.allocUnsafe(2)
    b.writeInt16BE(v)
    return this.raw(b)
  }

  int32(v: number): this {
    const b = Buffer.allocUnsafe(4)
    b.writeInt32BE(v)
    return this.raw(b)
  }

  int64(v: bigint): this {
    const b = Buffer.allocUnsafe(8)
    b.writeBigInt64BE(v)
    return this.raw(b)
  }

  bool(v: boolean): this {
    return this.int8(v ? 1 : 0)
  }

  uvarint(v: number): this {
    const out: number[] = []
    let u = v >>> 0
    while (u >= 0x80) {
      out.push((u & 0x7f) | 0x80)
      u >>>= 7
    }
    out.push(u)
    return this.raw(Buffer.from(out))
  }

  string16(s: string | null): this {
    if (s === null) return this.int16(-1)
    const b = Buffer.from(s, 'utf8')
    return this.int16(b.length).raw(b)
  }

  compactString(s: string | null): this {
    if (s === null) return this.uvarint(0)
    const b = Buffer.from(s, 'utf8')
    return this.uvarint(b.length + 1).raw(b)
  }

  compactBytes(b: Buffer | null): this {
    if (b === null) return this.uvarint(0)
    return this.uvarint(b.length + 1).raw(b)
  }

  compactArray<T>(items: readonly T[] | null, write: (w: WireWriter, item: T) => void): this {
    if (items === null) return this.uvarint(0)
    this.uvarint(items.length + 1)
    for (const item of items) write(this, item)
    return this
  }

  array32<T>(items: readonly T[], write: (w: WireWriter, item: T) => void): this {
    this.int32(items.length)
    for (const item of items) write(this, item)
    return this
  }

  /** An empty tagged-field buffer. */
  taggedFields(): this {
    return this.uvarint(0)
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.#chunks, this.#length)
  }
}

import { CODECS, crc32c, decompress } from './codecs.ts'
import { WireReader } from './wire.ts'

/**
 * Record batch v2 (magic 2), the only format Produce v3+ carries:
 *
 *   baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic int8 | crc uint32 |
 *   attributes int16 | lastOffsetDelta int32 | baseTimestamp int64 | maxTimestamp int64 |
 *   producerId int64 | producerEpoch int16 | baseSequence int32 | recordCount int32 | records…
 *
 * `crc` is CRC-32C over everything from `attributes` to the end of the batch;
 * `attributes & 7` is the codec of the records section. Each record:
 *
 *   length varint | attributes int8 | timestampDelta varlong | offsetDelta varint |
 *   keyLength varint | key | valueLength varint | value | headerCount varint |
 *   [headerKeyLength varint | headerKey | headerValueLength varint | headerValue]…
 */

export interface DecodedRecord {
  readonly offsetDelta: number
  readonly timestamp: bigint
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly headers: ReadonlyArray<readonly [string, Buffer | null]>
}

export interface DecodedBatch {
  readonly compression: string
  readonly transactional: boolean
  readonly producerId: bigint
  readonly producerEpoch: number
  readonly baseSequence: number
  readonly records: DecodedRecord[]
}

export class CorruptBatchError extends Error {
  override readonly name = 'CorruptBatchError'
}

/** Decodes every batch in a partition's `records` field (usually one). */
export function decodeRecordBatches(buf: Buffer): DecodedBatch[] {
  const out: DecodedBatch[] = []
  let pos = 0
  while (pos < buf.length) {
    if (buf.length - pos < 12) throw new CorruptBatchError('trailing bytes shorter than a batch header')
    const batchLength = buf.readInt32BE(pos + 8)
    const end = pos + 12 + batchLength
    if (end > buf.length) throw new CorruptBatchError(`batch length ${batchLength} runs past the records`)
    out.push(decodeBatch(buf.subarray(pos, end)))
    pos = end
  }
  return out
}

function decodeBatch(buf: Buffer): DecodedBatch {
  const r = new WireReader(buf)
  r.int64() // baseOffset: 0 from producers
  r.int32() // batchLength
  r.int32() // partitionLeaderEpoch
  const magic = r.int8()
  if (magic !== 2) throw new CorruptBatchError(`magic ${magic}, expected 2`)
  const crc = r.uint32()
  const actual = crc32c(buf.subarray(r.pos))
  if (crc !== actual) {
    throw new CorruptBatchError(
      `CRC-32C mismatch: header ${crc.toString(16)}, computed ${actual.toString(16)}`,
    )
  }
  const attributes = r.int16()
  const lastOffsetDelta = r.int32()
  const baseTimestamp = r.int64()
  r.int64() // maxTimestamp
  const producerId = r.int64()
  const producerEpoch = r.int16()
  const baseSequence = r.int32()
  const count = r.int32()
  const codec = attributes & 7
  if (codec >= CODECS.length) throw new CorruptBatchError(`unknown codec ${codec}`)
  let body: Buffer
  try {
    body = decompress(codec, r.bytes(r.remaining))
  } catch (err) {
    throw new CorruptBatchError(`${CODECS[codec]}: ${(err as Error).message}`)
  }
  const rr = new WireReader(body)
  const records: DecodedRecord[] = []
  for (let i = 0; i < count; i++) {
    const length = rr.varint()
    const start = rr.pos
    rr.int8() // record attributes: unused
    const timestamp = baseTimestamp + rr.varlong()
    const offsetDelta = rr.varint()
    const keyLength = rr.varint()
    const key = keyLength < 0 ? null : Buffer.from(rr.bytes(keyLength))
    const valueLength = rr.varint()
    const value = valueLength < 0 ? null : Buffer.from(rr.bytes(valueLength))
    const headers: Array<[string, Buffer | null]> = []
    const headerCount = rr.varint()
    for (let h = 0; h < headerCount; h++) {
      const name = rr.bytes(rr.varint()).toString('utf8')
      const n = rr.varint()
      headers.push([name, n < 0 ? null : Buffer.from(rr.bytes(n))])
    }
    if (rr.pos - start !== length) {
      throw new CorruptBatchError(`record ${i}: length ${length}, fields took ${rr.pos - start}`)
    }
    if (offsetDelta !== i) throw new CorruptBatchError(`record ${i}: offsetDelta ${offsetDelta}`)
    records.push({ offsetDelta, timestamp, key, value, headers })
  }
  if (rr.remaining !== 0) throw new CorruptBatchError(`${rr.remaining} bytes after the last record`)
  if (count > 0 && lastOffsetDelta !== count - 1) {
    throw new CorruptBatchError(`lastOffsetDelta ${lastOffsetDelta} with ${count} records`)
  }
  return {
    compression: CODECS[codec]!,
    transactional: (attributes & 0x10) !== 0,
    producerId,
    producerEpoch,
    baseSequence,
    records,
  }
}

import type { MessageToProduce } from '@platformatic/kafka'
import { type Batch, type BatchEntry, encodeJsonItems, type ItemFailure } from '@vinequeue/core/sender'
import type { ResolvedKafkaSenderOptions } from './options.ts'

/** A message for the client, keys and values already bytes (the producer runs no serializers). */
export type KafkaMessage = MessageToProduce<Buffer, Buffer, Buffer, Buffer> & { partition: number }

export interface BuiltMessages {
  readonly messages: KafkaMessage[]
  /** `itemOf[m]`: index in the batch of message `m`. */
  readonly itemOf: number[]
  /** Items that cannot become a message (value not JSON, key of the wrong type): permanent. */
  readonly failed: ItemFailure[]
}

/** Static headers, encoded once per sender. */
export function encodeHeaders(headers: Readonly<Record<string, string | Uint8Array>>): Map<Buffer, Buffer> {
  const out = new Map<Buffer, Buffer>()
  for (const [name, value] of Object.entries(headers)) {
    out.set(
      Buffer.from(name, 'utf8'),
      typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value),
    )
  }
  return out
}

/**
 * One message per item, in batch order. `partition` is set later, once the
 * partition count is known (see kafka-sender.ts). Values are copies, never
 * views of the batch: the batch's memory is reused once `send` settles, and
 * a send that settles early (aborted) may leave the client still holding
 * its messages.
 */
export function buildMessages(
  batch: Batch,
  options: ResolvedKafkaSenderOptions,
  headers: Map<Buffer, Buffer> | undefined,
): BuiltMessages {
  const { topic, key: keyField, value: format } = options
  // Raw items are sent as their bytes in either format (`raw: 'bytes'`).
  const json = format === 'json' ? encodeJsonItems(batch, { raw: 'bytes' }) : undefined
  const values = format === 'msgpack' ? copyPayloads(batch) : undefined
  const entries = keyField !== undefined ? batch.entries() : undefined
  const messages: KafkaMessage[] = []
  const itemOf: number[] = []
  const failed: ItemFailure[] = []
  let jsonFailed = 0 // json.failed is in index order, as `failed` is
  for (let index = 0; index < batch.count; index++) {
    let value: Buffer
    if (values) value = values[index]!
    else {
      const part = json!.parts[index]
      if (part === undefined) {
        failed.push(json!.failed[jsonFailed++]!)
        continue
      }
      // A raw item's bytes are a copy already (entries() copies them).
      value =
        typeof part === 'string'
          ? Buffer.from(part, 'utf8')
          : Buffer.from(part.buffer, part.byteOffset, part.byteLength)
    }
    const message: KafkaMessage = { topic, value, partition: -1 }
    if (keyField !== undefined) {
      const key = keyOf(entries![index]!, keyField)
      if (typeof key === 'string') {
        failed.push({ index, retryable: false, reason: key })
        continue
      }
      if (key) message.key = key
    }
    if (headers) message.headers = headers
    messages.push(message)
    itemOf.push(index)
  }
  return { messages, itemOf, failed }
}

/** The key bytes, undefined for no key, or why the field cannot be a key. */
function keyOf({ value: item, raw }: BatchEntry, field: string): Buffer | undefined | string {
  if (raw || typeof item !== 'object' || item === null || item instanceof Uint8Array) return undefined
  const v = (item as Record<string, unknown>)[field]
  if (v === undefined || v === null) return undefined
  if (typeof v === 'string') return Buffer.from(v, 'utf8')
  if ((typeof v === 'number' && Number.isFinite(v)) || typeof v === 'bigint')
    return Buffer.from(String(v), 'utf8')
  if (v instanceof Uint8Array) return Buffer.from(v) // a copy
  return `key field '${field}' is ${typeof v === 'number' ? String(v) : typeof v}: must be a string, a finite number or bytes`
}

/** Every item's encoded bytes, copied into one buffer (one allocation per batch). */
function copyPayloads(batch: Batch): Buffer[] {
  const payloads = batch.payloads()
  let total = 0
  for (const p of payloads) total += p.bytes.byteLength
  const all = Buffer.allocUnsafe(total)
  const out: Buffer[] = []
  let at = 0
  for (const p of payloads) {
    all.set(p.bytes, at)
    out.push(all.subarray(at, at + p.bytes.byteLength))
    at += p.bytes.byteLength
  }
  return out
}

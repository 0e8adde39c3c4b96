import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'

export interface Verification {
  readonly total: number
  readonly missing: number
  readonly duplicated: number
  /** Lines that are not an event of a known producer. */
  readonly unexpected: number
  readonly perProducer: ReadonlyArray<{ ref: string; expected: number; received: number; missing: number }>
}

/**
 * Reads the NDJSON file back and checks, per producer, that events
 * 0…expected-1 each arrived exactly once: a count, a duplicate check and a
 * gap check in one pass over a bitmap per producer. Order across batches is
 * not checked: concurrent sends may append batches out of order.
 */
export async function verify(path: string, expected: ReadonlyMap<string, number>): Promise<Verification> {
  const seen = new Map<string, Uint8Array>()
  for (const [ref, count] of expected) seen.set(ref, new Uint8Array(count))
  const received = new Map<string, number>()
  let total = 0
  let duplicated = 0
  let unexpected = 0
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY })
  for await (const line of lines) {
    if (line === '') continue
    total++
    let event: { data?: { ref?: unknown; n?: unknown } } | null
    try {
      event = JSON.parse(line)
    } catch {
      unexpected++
      continue
    }
    const ref = event?.data?.ref
    const n = event?.data?.n
    const bits = typeof ref === 'string' ? seen.get(ref) : undefined
    if (!bits || typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n >= bits.length) {
      unexpected++
      continue
    }
    received.set(ref as string, (received.get(ref as string) ?? 0) + 1)
    if (bits[n] === 1) duplicated++
    else bits[n] = 1
  }
  let missing = 0
  const perProducer = [...expected].map(([ref, count]) => {
    let gaps = 0
    for (const bit of seen.get(ref)!) if (bit === 0) gaps++
    missing += gaps
    return { ref, expected: count, received: received.get(ref) ?? 0, missing: gaps }
  })
  return { total, missing, duplicated, unexpected, perProducer }
}

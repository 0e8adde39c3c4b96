import type { MockRecord } from '@vinequeue/kafka-mock'
import { expect } from 'vitest'

/** Every item exactly once, its value the exact bytes of its JSON, its key the key field's UTF-8. */
export function expectExactly(
  records: readonly MockRecord[],
  sent: readonly Record<string, unknown>[],
): void {
  const byId = new Map<number, MockRecord[]>()
  for (const r of records) {
    const id = JSON.parse(r.value!.toString('utf8')).id as number
    byId.set(id, [...(byId.get(id) ?? []), r])
  }
  const missing = sent.filter((s) => !byId.has(s.id as number)).map((s) => s.id)
  const duplicated = [...byId].filter(([, rs]) => rs.length > 1).map(([id]) => id)
  expect({ missing, duplicated, total: records.length }).toEqual({
    missing: [],
    duplicated: [],
    total: sent.length,
  })
  for (const item of sent) {
    const r = byId.get(item.id as number)![0]!
    expect(r.value!.equals(Buffer.from(JSON.stringify(item), 'utf8'))).toBe(true)
    if (item.k === undefined) expect(r.key).toBeNull()
    else expect(r.key?.toString('utf8')).toBe(item.k)
  }
}

/** Same-key records share one partition and appear there in enqueue (id) order. */
export function expectKeysInOrder(records: readonly MockRecord[]): void {
  const partitionOf = new Map<string, number>()
  const lastId = new Map<string, number>()
  const ordered = [...records].sort((a, b) => a.partition - b.partition || a.offset - b.offset)
  for (const r of ordered) {
    const key = r.key!.toString('utf8')
    const id = JSON.parse(r.value!.toString('utf8')).id as number
    expect(partitionOf.get(key) ?? r.partition, `partition of ${key}`).toBe(r.partition)
    partitionOf.set(key, r.partition)
    expect(id, `order of ${key}`).toBeGreaterThan(lastId.get(key) ?? -1)
    lastId.set(key, id)
  }
}

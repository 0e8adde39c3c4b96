/**
 * The bench event: the same shape for every figure (VineQueue, msgpackr alone,
 * thread-stream, the array batcher), ~113 bytes as JSON, 83 bytes as plain
 * msgpack.
 */
export interface BenchEvent {
  id: number
  userId: string
  event: string
  ts: number
  data: { path: string; ref: string; n: number }
}

export function makeEvent(i: number): BenchEvent {
  return {
    id: i,
    userId: `user-${i % 1000}`,
    event: 'page_view',
    ts: 1_700_000_000_000 + i,
    data: { path: `/products/${i % 50}`, ref: 'https://example.com/', n: i & 255 },
  }
}

/**
 * Events are pre-generated (outside every timed region) into a pool of this
 * many and cycled with `i & POOL_MASK`: ~13 MB of objects, larger than the
 * CPU caches, so encoding does not run on a handful of hot objects.
 */
export const POOL_SIZE = 65_536
export const POOL_MASK: number = POOL_SIZE - 1

export function makeEvents(count: number = POOL_SIZE): BenchEvent[] {
  const out = new Array<BenchEvent>(count)
  for (let i = 0; i < count; i++) out[i] = makeEvent(i)
  return out
}

/** `count` arrays of `size` consecutive events taken from `pool` (shared objects, not copies). */
export function makeChunks(pool: readonly BenchEvent[], size: number, count: number): BenchEvent[][] {
  const out: BenchEvent[][] = []
  for (let c = 0; c < count; c++) {
    const chunk = new Array<BenchEvent>(size)
    for (let i = 0; i < size; i++) chunk[i] = pool[(c * size + i) & (pool.length - 1)]!
    out.push(chunk)
  }
  return out
}

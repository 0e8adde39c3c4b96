/**
 * Question: should batch CPU work (decode, encode for the target) and the
 * target's I/O run in one pool, or in a processor pool feeding a sender pool
 * (the design card's two pools)?
 *
 * Both topologies get the same two worker threads on this machine and the
 * same work per 1000-event batch: decode the framed batch (what a sender
 * thread receives from the pipeline: a shared slab), JSON-encode every item
 * as NDJSON, then wait IO_MS for the target (a timer: the round trip of a
 * local ingest endpoint). One pool: 2 threads × 4 concurrent tasks, each task
 * does all of it. Two pools: 1 processor thread (CPU part, body transferred
 * out) → 1 sender thread × 8 concurrent tasks (the wait). Batches in flight:
 * 8 either way. The pipeline itself is the same in both and not included.
 */
import { Piscina } from 'piscina'
import { frameRecords } from './batch-frame.ts'
import { queuePackr } from './enqueue.ts'
import { type BenchEvent, POOL_MASK } from './event.ts'
import { type Figure, progress } from './report.ts'
import { interleave, median, ROUNDS } from './stats.ts'
import type { TopologyTask } from './topology/task.ts'

const BATCH = 1000
const BATCHES_PER_ROUND = 600
const IN_FLIGHT = 8
const IO_MS = 2

/** Frames BATCH events per slab exactly as the queue does (one record per item, in shared memory). */
function makeSlabs(pool: readonly BenchEvent[], n: number): TopologyTask[] {
  const packr = queuePackr()
  const tasks: TopologyTask[] = []
  for (let s = 0; s < n; s++) {
    const parts = Array.from({ length: BATCH }, (_, i) =>
      packr.pack(pool[(s * BATCH + i) & POOL_MASK]).slice(),
    )
    const framed = frameRecords(parts, true)
    tasks.push({
      slab: framed.buffer as SharedArrayBuffer,
      byteLength: framed.byteLength,
      count: BATCH,
      ioMs: IO_MS,
    })
  }
  return tasks
}

/** Runs `batches` tasks with at most IN_FLIGHT at once; returns items/s. */
async function drive(
  tasks: readonly TopologyTask[],
  runOne: (task: TopologyTask) => Promise<unknown>,
): Promise<number> {
  let next = 0
  const t0 = performance.now()
  const lane = async (): Promise<void> => {
    while (next < BATCHES_PER_ROUND) {
      const task = tasks[next++ % tasks.length]!
      await runOne(task)
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane))
  return (BATCHES_PER_ROUND * BATCH) / ((performance.now() - t0) / 1000)
}

export async function runPoolTopology(pool: readonly BenchEvent[]): Promise<Figure[]> {
  const tasks = makeSlabs(pool, IN_FLIGHT)
  const common = { atomics: 'disabled' as const, idleTimeout: Number.POSITIVE_INFINITY }
  const one = new Piscina({
    ...common,
    filename: new URL('./topology/worker-one-pool.js', import.meta.url).href,
    minThreads: 2,
    maxThreads: 2,
    concurrentTasksPerWorker: 4,
  })
  const processor = new Piscina({
    ...common,
    filename: new URL('./topology/worker-process.js', import.meta.url).href,
    minThreads: 1,
    maxThreads: 1,
    concurrentTasksPerWorker: 1,
  })
  const sender = new Piscina({
    ...common,
    filename: new URL('./topology/worker-send.js', import.meta.url).href,
    minThreads: 1,
    maxThreads: 1,
    concurrentTasksPerWorker: IN_FLIGHT,
  })
  const runOne = (task: TopologyTask): Promise<unknown> => one.run(task)
  const runTwo = async (task: TopologyTask): Promise<unknown> => {
    const body = (await processor.run(task)) as ArrayBuffer
    return sender.run({ body, ioMs: task.ioMs }, { transferList: [body] })
  }
  // Warm-up: threads started, code compiled.
  await drive(tasks, runOne)
  await drive(tasks, runTwo)
  const onePool: number[] = []
  const twoPools: number[] = []
  await interleave(
    ROUNDS,
    [
      async () => void onePool.push(await drive(tasks, runOne)),
      async () => void twoPools.push(await drive(tasks, runTwo)),
    ],
    (r) =>
      progress(
        `  round ${r}/${ROUNDS}: one pool ${Math.round(onePool.at(-1)!).toLocaleString('en-US')}/s, processor→sender pools ${Math.round(twoPools.at(-1)!).toLocaleString('en-US')}/s`,
      ),
  )
  await Promise.all([one.destroy(), processor.destroy(), sender.destroy()])
  return [
    {
      name: 'pool_topology.one_pool.items_per_s',
      value: median(onePool),
      unit: 'items/s',
      baseline: { name: 'pool_topology.processor_then_sender_pools.items_per_s', value: median(twoPools) },
    },
  ]
}

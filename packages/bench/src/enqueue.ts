/**
 * Question: what does one enqueue cost on the producing thread, next to the
 * msgpack encoding it cannot avoid?
 *
 * Single-thread micro benchmarks with mitata's `measure` (its own calibrated
 * loop; the trimmed mean of its samples is the per-call time). The queue's
 * pipeline drains the ring to the no-op sender on its own thread meanwhile,
 * as it would in production. Each subject and its floor run in the same round,
 * order alternating, ROUNDS times; the figure is the median over rounds.
 */
import { createQueue, type Queue, QueueFullError } from '@vinequeue/core'
import { ITEM_PACKR_OPTIONS } from '@vinequeue/wal/batch-records'
import { do_not_optimize, measure } from 'mitata'
import { Packr } from 'msgpackr'
import { type BenchEvent, makeChunks, POOL_MASK } from './event.ts'
import { startNoopQueue } from './noop-queue.ts'
import { type Figure, progress } from './report.ts'
import { interleave, median, ROUNDS } from './stats.ts'

/** mitata keeps sampling until this much time was measured (ns). */
const MIN_CPU_TIME_NS = 250e6
/**
 * Caps on mitata samples so one measurement writes at most ~1M items (the
 * pipeline drains the default 8 MiB lane meanwhile; should it fall behind,
 * the QueueFullError makes measureEnqueue drain and measure again): per-item
 * benchmarks are sampled in batches of 4096 calls (mitata's default for calls
 * under 65 µs); enqueueBatch(1000) calls are sampled one by one.
 */
const MAX_SAMPLES_PER_ITEM = 256
const MAX_SAMPLES_BATCH_1000 = 1000
/** enqueueBatch(1000) calls per measurement into a queue with no consumer (see there). */
const IDLE_SAMPLES = 100
/** enqueueRaw samples (of 4096 calls) per measurement: see the enqueueRaw block. */
const RAW_SAMPLES = 24

/** A packr with the queue's msgpackr configuration (the batch format's). */
export function queuePackr(): Packr {
  return new Packr({ ...ITEM_PACKR_OPTIONS })
}

/** Runs each benchmark briefly, untimed, so the first round does not pay for JIT compilation. */
async function warmUp(q: Queue, fns: ReadonlyArray<() => void>): Promise<void> {
  for (const fn of fns) await measure(fn, { min_cpu_time: 20e6, max_samples: 16 })
  await q.drain()
}

/**
 * Per-call time (ns) of `fn`: mitata's trimmed mean. mitata decides from its
 * warm-up calls whether to time calls in batches of 4096 (calls under 65 µs)
 * or one by one; by default it skips the warm-up when the very first call is
 * slow (> 0.5 ms: a GC, a lazy compile), and then times a fast function one
 * call at a time, i.e. mostly the clock. Forcing the warm-up avoids that.
 */
async function nsPerCall(fn: () => void, maxSamples: number): Promise<number> {
  const stats = await measure(fn, {
    min_cpu_time: MIN_CPU_TIME_NS,
    max_samples: maxSamples,
    warmup_threshold: Number.POSITIVE_INFINITY,
    warmup_samples: 16,
  })
  return stats.avg
}

/**
 * Measures an enqueue benchmark, then drains the queue (outside the timing).
 * A QueueFullError would abort mitata's loop: the round is then measured
 * again after the drain, so a failed call is never counted.
 */
async function measureEnqueue(q: Queue, fn: () => void, maxSamples: number, what: string): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      const ns = await nsPerCall(fn, maxSamples)
      await q.drain()
      return ns
    } catch (err) {
      if (!(err instanceof QueueFullError) || attempt >= 3) throw err
      progress(`  ${what}: the lane filled (QueueFullError), draining and measuring again`)
      await q.drain()
    }
  }
}

/** Millions of items per second from the last per-call time in `ns`. */
function mps(ns: readonly number[], itemsPerCall = 1): string {
  return ((itemsPerCall * 1e3) / ns.at(-1)!).toFixed(2)
}

export async function runEnqueue(pool: readonly BenchEvent[]): Promise<Figure[]> {
  const packr = queuePackr()
  const q = await startNoopQueue()
  const figures: Figure[] = []
  try {
    // --- enqueue(event) vs packr.pack(event) ---
    {
      let i = 0
      let j = 0
      const pack = (): void => do_not_optimize(packr.pack(pool[i++ & POOL_MASK]))
      const enqueue = (): void => do_not_optimize(q.enqueue(pool[j++ & POOL_MASK]))
      const packNs: number[] = []
      const enqNs: number[] = []
      await warmUp(q, [pack, enqueue])
      await interleave(
        ROUNDS,
        [
          async () => {
            packNs.push(await nsPerCall(pack, MAX_SAMPLES_PER_ITEM))
          },
          async () => {
            enqNs.push(await measureEnqueue(q, enqueue, MAX_SAMPLES_PER_ITEM, 'enqueue'))
          },
        ],
        (r) =>
          progress(
            `enqueue round ${r}/${ROUNDS}: enqueue ${mps(enqNs)}, msgpackr.pack ${mps(packNs)} M items/s`,
          ),
      )
      figures.push({
        name: 'enqueue.items_per_s',
        value: 1e9 / median(enqNs),
        unit: 'items/s',
        baseline: { name: 'msgpackr.pack.items_per_s', value: 1e9 / median(packNs) },
      })
    }

    // --- enqueueBatch(1000 events) vs packr.pack(the same 1000-event array) ---
    {
      const chunks = makeChunks(pool, 1000, 64)
      let i = 0
      let j = 0
      const pack = (): void => do_not_optimize(packr.pack(chunks[i++ & 63]))
      const enqueueBatch = (): void => do_not_optimize(q.enqueueBatch(chunks[j++ & 63]!))
      // The hand-off floor: the same pack, then its ~100 KB copied into a
      // shared 8 MiB region at an advancing offset — the bytes any queue must
      // move into memory another thread reads (no ring, no second thread).
      const shared = new Uint8Array(new SharedArrayBuffer(8 * 1024 * 1024))
      let k = 0
      let at = 0
      const packCopy = (): void => {
        const bytes = packr.pack(chunks[k++ & 63])
        if (at + bytes.length > shared.length) at = 0
        shared.set(bytes, at)
        at += (bytes.length + 7) & ~7
      }
      // The same enqueueBatch into a queue that is never started: no pipeline
      // thread reads the lane, so this is the producer's own cost, without the
      // other core's traffic in the shared cache. 100 calls (~10 MB) per
      // measurement fit its 16 MiB lane; a fresh queue per measurement.
      let idleQ: Queue | undefined
      let m = 0
      const idleBatch = (): void => do_not_optimize(idleQ!.enqueueBatch(chunks[m++ & 63]!))
      const idleRound = async (): Promise<number> => {
        idleQ = createQueue({ send() {}, ringBytes: 16 * 1024 * 1024 })
        const ns = await nsPerCall(idleBatch, IDLE_SAMPLES)
        await idleQ.stop({ timeoutMs: 0 })
        return ns
      }
      const packNs: number[] = []
      const copyNs: number[] = []
      const idleNs: number[] = []
      const enqNs: number[] = []
      await warmUp(q, [pack, packCopy, enqueueBatch])
      await interleave(
        ROUNDS,
        [
          async () => {
            packNs.push(await nsPerCall(pack, MAX_SAMPLES_BATCH_1000))
          },
          async () => {
            copyNs.push(await nsPerCall(packCopy, MAX_SAMPLES_BATCH_1000))
          },
          async () => {
            idleNs.push(await idleRound())
          },
          async () => {
            enqNs.push(await measureEnqueue(q, enqueueBatch, MAX_SAMPLES_BATCH_1000, 'enqueueBatch'))
          },
        ],
        (r) =>
          progress(
            `enqueue_batch_1000 round ${r}/${ROUNDS}: enqueueBatch ${mps(enqNs, 1000)} (no consumer ${mps(idleNs, 1000)}), msgpackr.pack ${mps(packNs, 1000)}, pack + copy to shared ${mps(copyNs, 1000)} M items/s`,
          ),
      )
      figures.push({
        name: 'enqueue_batch_1000.items_per_s',
        value: 1e12 / median(enqNs),
        unit: 'items/s',
        baseline: { name: 'msgpackr.pack_batch_1000.items_per_s', value: 1e12 / median(packNs) },
      })
      figures.push({
        name: 'enqueue_batch_1000.no_consumer.items_per_s',
        value: 1e12 / median(idleNs),
        unit: 'items/s',
        baseline: { name: 'msgpackr.pack_batch_1000.items_per_s', value: 1e12 / median(packNs) },
      })
      figures.push({
        name: 'msgpackr.pack_batch_1000_copy_to_shared.items_per_s',
        value: 1e12 / median(copyNs),
        unit: 'items/s',
        baseline: { name: 'msgpackr.pack_batch_1000.items_per_s', value: 1e12 / median(packNs) },
      })
    }

    // --- enqueueRaw(128 B) vs a plain 128-byte copy into a large shared buffer ---
    {
      const raw = new Uint8Array(128).map((_, k) => k)
      // The floor of enqueueRaw: the payload copy alone, into shared memory as
      // the ring's is, at an advancing 4-aligned offset (header + payload = 132 B).
      const big = new Uint8Array(new SharedArrayBuffer(64 * 1024 * 1024))
      const last = big.length - 132
      let off = 0
      const copy = (): void => {
        big.set(raw, off)
        off += 132
        if (off > last) off = 0
      }
      // enqueueRaw outruns the pipeline (it has no encoding to do; the pipeline
      // and pool still move every record), so a measurement is kept to
      // RAW_SAMPLES × 4096 calls (~13 MB of records), which a 16 MiB lane —
      // still inside this machine's L3, like the default one — holds even if
      // the pipeline drained nothing; the lane is drained between measurements.
      const rawQ = await startNoopQueue({ ringBytes: 16 * 1024 * 1024 })
      const enqueueRaw = (): void => do_not_optimize(rawQ.enqueueRaw(raw))
      const copyNs: number[] = []
      const rawNs: number[] = []
      await warmUp(rawQ, [copy, enqueueRaw])
      await interleave(
        ROUNDS,
        [
          async () => {
            copyNs.push(await nsPerCall(copy, MAX_SAMPLES_PER_ITEM))
          },
          async () => {
            rawNs.push(await measureEnqueue(rawQ, enqueueRaw, RAW_SAMPLES, 'enqueueRaw'))
          },
        ],
        (r) =>
          progress(
            `enqueue_raw_128b round ${r}/${ROUNDS}: enqueueRaw ${mps(rawNs)}, Uint8Array.set ${mps(copyNs)} M items/s`,
          ),
      )
      do_not_optimize(big)
      await rawQ.stop()
      figures.push({
        name: 'enqueue_raw_128b.items_per_s',
        value: 1e9 / median(rawNs),
        unit: 'items/s',
        baseline: { name: 'uint8array_set_128b.items_per_s', value: 1e9 / median(copyNs) },
      })
    }
  } finally {
    await q.stop()
  }
  return figures
}

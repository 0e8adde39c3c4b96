/**
 * Question: does `queue.start()` stay fast when the WAL holds a large
 * backlog, and how fast does the queue re-deliver it?
 *
 * A log of ~1 GiB of pending items (16 segments of 64 MiB, 1000-item frames
 * in core's batch format, bench events as single-item records — wal-log.ts
 * `encodeBatch`) is written once with `WriteAheadLog` directly (not timed;
 * faster than running a queue against a sender that is down, and the same
 * bytes). Each round gets its own copy of it: the segments hard-linked (the
 * queue only reads and deletes them), the last one — which the log reopens
 * for appending — copied and fdatasync'ed (untimed): with syncMode 'always'
 * a crashed log's pages were on disk, while an unsynced 64 MiB copy made the
 * first fdatasync of the open write it out (ext4 data=ordered), 30+ ms that
 * were the bench's, not the log's. Subjects, interleaved in every round:
 *
 * - `start_with_backlog_ms`: `await queue.start()` on that copy (WAL
 *   syncMode always, the no-op sender module). The log checks only its last
 *   segment at open, here a full 64 MiB one (the worst case: a crash leaves
 *   it anywhere between empty and full), which it walks header by header (a
 *   segment of 4 MiB or more; the WAL README's Recovery); older segments are
 *   read while re-delivering.
 * - `recovery_queue.items_per_s`: the same queue, from the start() call to
 *   its 'recovered' event (the last backlog frame read and handed to the
 *   sender; `metrics().recovering` false), backlog items / that time.
 * - `start_with_backlog_small_tail_ms`: start() on the same backlog plus one
 *   segment holding a single frame (scanned: it is small): what checking the
 *   last segment costs.
 * - `start_with_backlog_clean_ms`: start() on the 1 GiB backlog after a clean
 *   close (the copy opened and closed once with WriteAheadLog, untimed, which
 *   writes its `clean` record): the last segment is not scanned at all — a
 *   restart after `stop()`, where the full-segment shape is a restart after a
 *   crash.
 * - `start_empty_wal_ms`: start() on an empty WAL directory — the threads'
 *   and sender module's start-up, the floor of every start. Beside it
 *   `thread_pair_boot_ms` (thread-floor.ts): two bare worker threads started
 *   at once, as start() starts the pipeline thread and the first sender
 *   thread, the floor under start() itself on this machine.
 * - `wal_recovery_same_run.items_per_s`: `WriteAheadLog.open` + `frames()`
 *   over the same log with no queue (wal-log.ts's recovery round): the floor
 *   of re-delivery.
 * - (progress lines only) `WriteAheadLog.open` alone on each shape: the
 *   log's share of a start.
 *
 * Every queue is stopped (the backlog queues at once, timeout 0, after the
 * measurement) and its directory deleted after its round; the 1 GiB is
 * deleted at the end. The log's pages are in the page cache (just written):
 * these are CPU and copy costs, not the disk's read speed.
 */
import { once } from 'node:events'
import {
  closeSync,
  copyFileSync,
  fdatasyncSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createQueue, type Queue } from '@vinequeue/core'
import { FRAME_HEADER_BYTES, WriteAheadLog } from '@vinequeue/wal'
import type { BenchEvent } from './event.ts'
import { NOOP_SENDER } from './noop-queue.ts'
import { type Figure, formatValue, progress } from './report.ts'
import { interleave, median } from './stats.ts'
import { threadPairBoot } from './thread-floor.ts'
import { encodeBatch } from './wal-log.ts'

/** The WAL's (and the queue's) default segment size. */
const SEGMENT_BYTES = 64 * 1024 * 1024
/** 16 × 64 MiB = 1 GiB. */
const SEGMENTS = 16
const BATCH_ITEMS = 1000
/** Distinct pre-encoded batches, cycled. */
const BATCHES = 64
const BACKLOG_ROUNDS = 9
/** Above the backlog, so that the log is not full at start (wal.maxBytes defaults to 1 GiB). */
const MAX_BYTES = 2 * 1024 * 1024 * 1024

interface Backlog {
  readonly dir: string
  /** Segment file names, oldest first: SEGMENTS full ones, then one holding a single frame. */
  readonly names: readonly string[]
  /** Items in the SEGMENTS full segments. */
  readonly items: number
  readonly bytes: number
}

/** Writes SEGMENTS full segments, then one frame more (which starts segment SEGMENTS + 1). */
function writeBacklog(dir: string, pool: readonly BenchEvent[]): Backlog {
  const batches = Array.from({ length: BATCHES }, (_, b) => encodeBatch(pool, b * BATCH_ITEMS, BATCH_ITEMS))
  const wal = WriteAheadLog.open(dir)
  let segments = 1
  let segmentSize = 0
  let items = 0
  let bytes = 0
  try {
    for (let i = 0; ; i++) {
      const batch = batches[i % BATCHES]!
      const frameBytes = FRAME_HEADER_BYTES + batch.byteLength
      // The log's own rule (write-ahead-log.ts append): a frame that does not fit starts a segment.
      if (segmentSize > 0 && segmentSize + frameBytes > SEGMENT_BYTES) {
        if (segments === SEGMENTS) {
          wal.append(batch, BATCH_ITEMS) // the small tail of the second shape
          break
        }
        segments++
        segmentSize = 0
      }
      wal.append(batch, BATCH_ITEMS)
      segmentSize += frameBytes
      items += BATCH_ITEMS
      bytes += frameBytes
    }
  } finally {
    wal.close()
  }
  const names = readdirSync(dir)
    .filter((n) => n.endsWith('.wal'))
    .sort()
  if (names.length !== SEGMENTS + 1)
    throw new Error(`backlog: ${names.length} segments, expected ${SEGMENTS + 1}`)
  return { dir, names, items, bytes }
}

/** A fresh copy of the backlog's first `segments` segments in `dir`: hard links, the last one copied. */
function copyBacklog(backlog: Backlog, segments: number, dir: string): void {
  mkdirSync(dir, { mode: 0o700 })
  for (let i = 0; i < segments; i++) {
    const name = backlog.names[i]!
    if (i < segments - 1) linkSync(join(backlog.dir, name), join(dir, name))
    else {
      copyFileSync(join(backlog.dir, name), join(dir, name))
      const fd = openSync(join(dir, name), 'r+')
      try {
        fdatasyncSync(fd)
      } finally {
        closeSync(fd)
      }
    }
  }
}

function backlogQueue(dir: string): Queue {
  return createQueue({
    wal: { dir, syncMode: 'always', maxBytes: MAX_BYTES },
    sender: { module: NOOP_SENDER },
  })
}

/** Timed start() on `dir`; the queue is stopped at once afterwards (not timed). */
async function startOnly(dir: string): Promise<number> {
  const q = backlogQueue(dir)
  const t0 = performance.now()
  await q.start()
  const ms = performance.now() - t0
  await q.stop({ timeoutMs: 0 })
  rmSync(dir, { recursive: true, force: true })
  return ms
}

/** Timed start() on a full backlog, then the time to its 'recovered' event. */
async function startAndRecover(dir: string, items: number): Promise<{ startMs: number; itemsPerS: number }> {
  const q = backlogQueue(dir)
  const recovered = once(q, 'recovered')
  const t0 = performance.now()
  await q.start()
  const startMs = performance.now() - t0
  const [info] = (await recovered) as [{ items: number; ms: number }]
  const seconds = (performance.now() - t0) / 1000
  const m = q.metrics()
  if (m.recovering || m.recoveredTotal !== items || info.items !== items) {
    throw new Error(
      `recovery: recovering ${m.recovering}, ${m.recoveredTotal} items recovered (event: ${info.items}), expected ${items}`,
    )
  }
  await q.drain() // (not timed) everything acknowledged, the segments deleted
  await q.stop()
  rmSync(dir, { recursive: true, force: true })
  return { startMs, itemsPerS: items / seconds }
}

/** `WriteAheadLog.open` alone on a fresh copy of `segments` segments (ms): the log's share of a start. */
function walOpenRound(backlog: Backlog, segments: number, dir: string): number {
  copyBacklog(backlog, segments, dir)
  const t0 = performance.now()
  const wal = WriteAheadLog.open(dir)
  const ms = performance.now() - t0
  wal.close()
  rmSync(dir, { recursive: true, force: true })
  return ms
}

/** The floor: open + every frame read, no queue (wal-log.ts recoverRound); items/s. */
function walRecoveryRound(backlog: Backlog): number {
  const t0 = performance.now()
  const wal = WriteAheadLog.open(backlog.dir)
  let items = 0
  try {
    for (const frame of wal.frames()) items += frame.count
  } finally {
    wal.close()
  }
  const seconds = (performance.now() - t0) / 1000
  if (items !== backlog.items + BATCH_ITEMS) throw new Error(`WAL recovery read ${items} items`)
  return items / seconds
}

export async function runStartBacklog(pool: readonly BenchEvent[]): Promise<Figure[]> {
  const root = mkdtempSync(join(tmpdir(), 'vq-bench-backlog-'))
  const empty: number[] = []
  const threadFloor: number[] = []
  const full: number[] = []
  const small: number[] = []
  const clean: number[] = []
  const recovery: number[] = []
  const floor: number[] = []
  const openFull: number[] = []
  const openSmall: number[] = []
  try {
    const t0 = performance.now()
    const backlog = writeBacklog(join(root, 'backlog'), pool)
    progress(
      `  backlog: ${backlog.items} items, ${formatValue(backlog.bytes / 2 ** 20)} MiB in ${SEGMENTS} segments ` +
        `(+ 1 frame in a 17th for the small-tail shape), written in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    )
    let round = 0
    const dir = (what: string): string => join(root, `${what}-${round}`)
    // Warm-up (module loading, JIT), not recorded.
    await startOnly(dir('warm'))
    await threadPairBoot()
    await interleave(
      BACKLOG_ROUNDS,
      [
        async () => void empty.push(await startOnly(dir('empty'))),
        async () => void threadFloor.push(await threadPairBoot()),
        async () => {
          copyBacklog(backlog, SEGMENTS, dir('full'))
          const r = await startAndRecover(dir('full'), backlog.items)
          full.push(r.startMs)
          recovery.push(r.itemsPerS)
        },
        async () => {
          copyBacklog(backlog, SEGMENTS + 1, dir('small'))
          small.push(await startOnly(dir('small')))
        },
        async () => {
          copyBacklog(backlog, SEGMENTS, dir('clean'))
          WriteAheadLog.open(dir('clean')).close() // (a clean close: the `clean` record names the full last segment)
          clean.push(await startOnly(dir('clean')))
        },
        () => void floor.push(walRecoveryRound(backlog)),
        () => {
          openFull.push(walOpenRound(backlog, SEGMENTS, dir('open-full')))
          openSmall.push(walOpenRound(backlog, SEGMENTS + 1, dir('open-small')))
        },
      ],
      (r) => {
        round = r
        progress(
          `start_with_backlog round ${r}/${BACKLOG_ROUNDS}: start() empty ${empty.at(-1)!.toFixed(1)} ms ` +
            `(two bare threads booting side by side ${threadFloor.at(-1)!.toFixed(1)} ms), ` +
            `1 GiB backlog ${full.at(-1)!.toFixed(1)} ms, same + small tail ${small.at(-1)!.toFixed(1)} ms, ` +
            `after a clean close ${clean.at(-1)!.toFixed(1)} ms ` +
            `(WriteAheadLog.open alone ${openFull.at(-1)!.toFixed(1)} / ${openSmall.at(-1)!.toFixed(1)} ms); ` +
            `recovery through the queue ${(recovery.at(-1)! / 1e6).toFixed(2)} M items/s, WAL read alone ${(floor.at(-1)! / 1e6).toFixed(2)} M items/s`,
        )
      },
    )
    progress(
      `  medians: WriteAheadLog.open on the backlog ${median(openFull).toFixed(1)} ms (full 64 MiB last segment), ` +
        `${median(openSmall).toFixed(1)} ms (one-frame last segment)`,
    )
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
  const startEmpty = { name: 'start_empty_wal_ms', value: median(empty) }
  return [
    {
      ...startEmpty,
      unit: 'ms',
      baseline: { name: 'thread_pair_boot_ms', value: median(threadFloor) },
    },
    { name: 'start_with_backlog_ms', value: median(full), unit: 'ms', baseline: startEmpty },
    { name: 'start_with_backlog_small_tail_ms', value: median(small), unit: 'ms', baseline: startEmpty },
    { name: 'start_with_backlog_clean_ms', value: median(clean), unit: 'ms', baseline: startEmpty },
    {
      name: 'recovery_queue.items_per_s',
      value: median(recovery),
      unit: 'items/s',
      baseline: { name: 'wal_recovery_same_run.items_per_s', value: median(floor) },
    },
  ]
}

/**
 * Question: what does a pino user get from logging through VineQueue instead
 * of pino's own ways of getting lines off the logging thread?
 *
 * Four subjects, each logging PINO_LINES lines the same way — `logger.info(event)`
 * per bench event (a ~190-character JSON line), CHUNK lines per turn of the event
 * loop — interleaved per round, in one process:
 *
 * - `pino.vinequeue`: `pino(vinequeueDestination({ sender: no-op module }))`:
 *   each line copied into the queue's ring, batched by the pipeline thread,
 *   acknowledged by the no-op sender module in the sender pool. Timed until
 *   `destination.flush()` and `queue.drain()` resolved (every line acknowledged).
 * - `pino.transport`: `pino(pino.transport({ target: no-op }))`: pino's
 *   thread-stream worker (default options) whose destination discards every
 *   chunk (`thread-stream-sink.ts`, the peers' target). Timed until
 *   `logger.flush(cb)` reports that the worker has read everything.
 * - `pino.destination`: `pino(pino.destination(file))`: sonic-boom appending to
 *   a file in a temp directory (default options: asynchronous writes, no
 *   fsync). Timed until `flush(cb)` reports everything written to the file.
 *
 * - `pino.noop_destination` (the floor): `pino({ write() {} })`, a destination
 *   on the logging thread that discards each line — pino's own serialization,
 *   the most any destination can reach.
 *
 * Beside lines/s, the logging thread's event-loop delay p99 during the
 * production loop (`monitorEventLoopDelay`, 1 ms resolution, enabled for the
 * loop only): what the logger costs the thread's responsiveness.
 * Set-up (queue start, worker start, file open) is not timed.
 */
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { setImmediate as yieldToLoop } from 'node:timers/promises'
import { vinequeueDestination } from '@vinequeue/pino'
import { type Logger, pino } from 'pino'
import { type BenchEvent, POOL_MASK } from './event.ts'
import { NOOP_SENDER } from './noop-queue.ts'
import { type Figure, progress } from './report.ts'
import { interleave, median, ROUNDS } from './stats.ts'

/** Lines per round. */
export const PINO_LINES = 300_000
/** Lines logged between two turns of the event loop. */
const CHUNK = 1000

interface RoundResult {
  linesPerS: number
  delayP99Ms: number
}

/** Logs `n` lines, CHUNK per loop turn, then waits for `settle`; the clock covers both. */
async function round(
  logger: Logger,
  pool: readonly BenchEvent[],
  n: number,
  settle: () => Promise<void>,
): Promise<RoundResult> {
  const h = monitorEventLoopDelay({ resolution: 1 })
  h.enable()
  const t0 = performance.now()
  let i = 0
  while (i < n) {
    const end = Math.min(n, i + CHUNK)
    for (; i < end; i++) logger.info(pool[i & POOL_MASK])
    await yieldToLoop()
  }
  h.disable()
  await settle()
  return { linesPerS: n / ((performance.now() - t0) / 1000), delayP99Ms: h.percentile(99) / 1e6 }
}

const flushed = (logger: Logger): Promise<void> =>
  new Promise((resolve, reject) => logger.flush((err) => (err ? reject(err) : resolve())))

export async function runPino(pool: readonly BenchEvent[]): Promise<Figure[]> {
  const dir = mkdtempSync(join(tmpdir(), 'vq-bench-pino-'))
  let refused = 0
  const vqDest = vinequeueDestination({
    sender: { module: NOOP_SENDER.href },
    // A refused line (ring at its hard limit) is counted and fails the step below.
    onWriteError: () => {
      refused++
    },
  })
  await vqDest.ready
  const vqLogger = pino(vqDest)
  const transport = pino.transport({ target: new URL('./thread-stream-sink.js', import.meta.url).href })
  await once(transport, 'ready')
  const tpLogger = pino(transport)
  const file = pino.destination({ dest: join(dir, 'pino.log'), minLength: 0 })
  await once(file, 'ready')
  const fileLogger = pino(file)
  let discarded = 0
  const floorLogger = pino({
    writable: true,
    write: (line: string) => {
      discarded += line.length
    },
  } as unknown as pino.DestinationStream)
  const settleVq = async (): Promise<void> => {
    await vqDest.flush()
    await vqDest.queue.drain()
  }
  const vq: RoundResult[] = []
  const tp: RoundResult[] = []
  const fd: RoundResult[] = []
  const fl: RoundResult[] = []
  try {
    // Warm-up of every subject, not recorded.
    await round(vqLogger, pool, PINO_LINES / 10, settleVq)
    await round(tpLogger, pool, PINO_LINES / 10, () => flushed(tpLogger))
    await round(fileLogger, pool, PINO_LINES / 10, () => flushed(fileLogger))
    await round(floorLogger, pool, PINO_LINES / 10, async () => {})
    const m = (r: RoundResult): string =>
      `${(r.linesPerS / 1e6).toFixed(2)} M/s, p99 ${r.delayP99Ms.toFixed(1)} ms`
    await interleave(
      ROUNDS,
      [
        async () => {
          vq.push(await round(vqLogger, pool, PINO_LINES, settleVq))
        },
        async () => {
          tp.push(await round(tpLogger, pool, PINO_LINES, () => flushed(tpLogger)))
        },
        async () => {
          fd.push(await round(fileLogger, pool, PINO_LINES, () => flushed(fileLogger)))
        },
        async () => {
          fl.push(await round(floorLogger, pool, PINO_LINES, async () => {}))
        },
      ],
      (r) =>
        progress(
          `pino round ${r}/${ROUNDS}: VineQueue ${m(vq.at(-1)!)}; transport ${m(tp.at(-1)!)}; destination ${m(fd.at(-1)!)}; floor ${m(fl.at(-1)!)}`,
        ),
    )
  } finally {
    await vqDest.close()
    const closed = once(transport, 'close')
    transport.end()
    await closed
    file.end()
    rmSync(dir, { recursive: true, force: true })
  }
  if (discarded === 0) throw new Error('pino: the floor destination received nothing')
  if (refused > 0)
    throw new Error(`pino: the queue refused ${refused} line(s): the figures would not be comparable`)
  const sent = vqDest.queue.metrics().sentTotal
  const logged = ROUNDS * PINO_LINES + PINO_LINES / 10
  if (sent !== logged) throw new Error(`pino: ${sent} lines acknowledged by the sender, ${logged} logged`)
  const rate = (rs: RoundResult[]): number => median(rs.map((r) => r.linesPerS))
  const delay = (rs: RoundResult[]): number => median(rs.map((r) => r.delayP99Ms))
  return [
    {
      name: 'pino.vinequeue.lines_per_s',
      value: rate(vq),
      unit: 'lines/s',
      baseline: { name: 'pino.transport.lines_per_s', value: rate(tp) },
    },
    {
      name: 'pino.vinequeue.lines_per_s_vs_destination',
      value: rate(vq),
      unit: 'lines/s',
      baseline: { name: 'pino.destination.lines_per_s', value: rate(fd) },
    },
    {
      name: 'pino.vinequeue.lines_per_s_vs_floor',
      value: rate(vq),
      unit: 'lines/s',
      baseline: { name: 'pino.noop_destination.lines_per_s', value: rate(fl) },
    },
    {
      name: 'pino.transport.lines_per_s_vs_floor',
      value: rate(tp),
      unit: 'lines/s',
      baseline: { name: 'pino.noop_destination.lines_per_s', value: rate(fl) },
    },
    { name: 'pino.noop_destination.lines_per_s', value: rate(fl), unit: 'lines/s' },
    { name: 'pino.transport.lines_per_s', value: rate(tp), unit: 'lines/s' },
    { name: 'pino.destination.lines_per_s', value: rate(fd), unit: 'lines/s' },
    {
      name: 'pino.vinequeue.event_loop_delay_p99_ms',
      value: delay(vq),
      unit: 'ms',
      baseline: { name: 'pino.transport.event_loop_delay_p99_ms', value: delay(tp) },
    },
    {
      name: 'pino.vinequeue.event_loop_delay_p99_ms_vs_destination',
      value: delay(vq),
      unit: 'ms',
      baseline: { name: 'pino.destination.event_loop_delay_p99_ms', value: delay(fd) },
    },
    { name: 'pino.noop_destination.event_loop_delay_p99_ms', value: delay(fl), unit: 'ms' },
    { name: 'pino.transport.event_loop_delay_p99_ms', value: delay(tp), unit: 'ms' },
    { name: 'pino.destination.event_loop_delay_p99_ms', value: delay(fd), unit: 'ms' },
  ]
}

/**
 * Finds sender threads whose event loop is stuck (a send that blocks the
 * thread, e.g. a synchronous loop), so they can be terminated (by the
 * queue's thread, which started them) and their sends answered as timeouts.
 *
 * Watchdog SharedArrayBuffer, Int32 slots; one row per live sender thread
 * that built its sender:
 *
 *   +-----------+
 *   | CLOSING   |                           slot 0
 *   +-----------+-----------+-----------+
 *   | THREAD_ID | RUNNING   | BEAT      |   row r at (1 + r × 3)
 *   +-----------+-----------+-----------+
 *
 * A thread claims a free row (THREAD_ID 0 → its threadId, CAS) once its
 * sender is built, counts the sends it runs (RUNNING) and bumps BEAT every
 * BEAT_MS while its event loop turns. The pipeline thread terminates a
 * thread whose BEAT stood still for longer than the send deadline plus a
 * grace while it had sends running, and frees its row.
 *
 * The rows are also how the pipeline knows which threads have a sender to
 * close at stop (a message per thread would cost start() more: the first
 * BroadcastChannel message a thread receives loads Node's MessageEvent,
 * note `start.timeline` in packages/bench/README.md). CLOSING is set before
 * the close request goes out; a thread that claims its row after that
 * closes its sender unasked.
 */
export const WatchdogSlot = { THREAD_ID: 0, RUNNING: 1, BEAT: 2 } as const
/** Slot 0: the pipeline asked the sender threads to close their senders. */
const CLOSING = 0
const ROW = 3
export const WATCHDOG_ROWS = 256
export const BEAT_MS = 100

export function createWatchdogBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer((1 + WATCHDOG_ROWS * ROW) * 4)
}

export function rowOffset(row: number): number {
  return 1 + row * ROW
}

/** Sender-thread side: claims a row and starts the heartbeat. Returns the row's offset (-1: table full, no watchdog). */
export function joinWatchdog(sab: SharedArrayBuffer, threadId: number): number {
  const table = new Int32Array(sab)
  for (let row = 0; row < WATCHDOG_ROWS; row++) {
    const at = rowOffset(row)
    if (Atomics.compareExchange(table, at + WatchdogSlot.THREAD_ID, 0, threadId) === 0) {
      Atomics.store(table, at + WatchdogSlot.RUNNING, 0)
      setInterval(() => Atomics.add(table, at + WatchdogSlot.BEAT, 1), BEAT_MS).unref()
      return at
    }
  }
  return -1
}

/** Sender-thread side: whether the pipeline has asked the threads to close their senders. */
export function closingRequested(sab: SharedArrayBuffer): boolean {
  return Atomics.load(new Int32Array(sab), CLOSING) === 1
}

/** Pipeline side: remembers when each row's beat last moved. */
export class Watchdog {
  readonly #table: Int32Array
  readonly #seen = new Map<number, { beat: number; at: number }>()

  constructor(sab: SharedArrayBuffer) {
    this.#table = new Int32Array(sab)
  }

  /** Threads (threadId, sends running) whose loop has not turned for `stuckMs` while running sends; their rows are freed. */
  stuck(stuckMs: number, now: number = performance.now()): Array<{ threadId: number; running: number }> {
    const out: Array<{ threadId: number; running: number }> = []
    for (let row = 0; row < WATCHDOG_ROWS; row++) {
      const at = rowOffset(row)
      const threadId = Atomics.load(this.#table, at + WatchdogSlot.THREAD_ID)
      if (threadId === 0) continue
      const beat = Atomics.load(this.#table, at + WatchdogSlot.BEAT)
      const running = Atomics.load(this.#table, at + WatchdogSlot.RUNNING)
      const seen = this.#seen.get(at)
      if (!seen || seen.beat !== beat || running === 0) {
        this.#seen.set(at, { beat, at: now })
        continue
      }
      if (now - seen.at < stuckMs) continue
      out.push({ threadId, running })
      this.#seen.delete(at)
      Atomics.store(this.#table, at + WatchdogSlot.THREAD_ID, 0)
    }
    return out
  }

  /**
   * Marks the table closing (threads that build a sender from now on close
   * it unasked) and returns the threads that have built one so far.
   */
  closing(): number[] {
    Atomics.store(this.#table, CLOSING, 1)
    const threads: number[] = []
    for (let row = 0; row < WATCHDOG_ROWS; row++) {
      const threadId = Atomics.load(this.#table, rowOffset(row) + WatchdogSlot.THREAD_ID)
      if (threadId !== 0) threads.push(threadId)
    }
    return threads
  }

  /** Frees the row of a thread that exited (so a new thread can take it). */
  release(threadId: number): void {
    for (let row = 0; row < WATCHDOG_ROWS; row++) {
      const at = rowOffset(row)
      if (Atomics.load(this.#table, at + WatchdogSlot.THREAD_ID) === threadId) {
        this.#seen.delete(at)
        Atomics.store(this.#table, at + WatchdogSlot.THREAD_ID, 0)
      }
    }
  }
}

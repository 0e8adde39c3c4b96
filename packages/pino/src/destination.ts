import type { Queue, StopReport } from '@vinequeue/core'
import { resolveDestination, type VineQueueDestinationOptions } from './options.ts'

const encoder = new TextEncoder()
const NEWLINE = 0x0a

/**
 * A pino destination (`pino(options, destination)`): each line pino
 * serializes is handed to a VineQueue queue as a raw item on the logging
 * thread — its UTF-8 bytes, without the trailing newline, copied once into
 * the queue's shared-memory ring. Senders receive the lines as raw items.
 */
export class VineQueueDestination {
  /** The queue the lines go to (created by the destination unless you passed `queue`). */
  readonly queue: Queue
  /**
   * Settles when the queue has started (the destination's own queue), or at
   * once for a queue you passed. Rejects with what `queue.start()` rejected
   * with; lines written before that wait in the ring meanwhile.
   */
  readonly ready: Promise<void>
  readonly #owned: boolean
  readonly #onWriteError: ((error: Error, line: string) => void) | undefined
  /** Reused for every line: a line is copied into the ring before write() returns. */
  #scratch: Uint8Array = new Uint8Array(16 * 1024)
  #closing: Promise<StopReport | undefined> | undefined

  constructor(options: VineQueueDestinationOptions) {
    const { queue, owned, onWriteError } = resolveDestination(options)
    this.queue = queue
    this.#owned = owned
    this.#onWriteError = onWriteError
    this.ready = owned ? queue.start() : Promise.resolve()
    // Failures surface through `ready`, flush() and the queue's health(); a
    // logger set up without awaiting `ready` must not crash on an unhandled rejection.
    this.ready.catch(() => {})
  }

  /**
   * True until `close()`, as on a Node stream. pino recognizes a destination
   * passed alone (`pino(destination)`) by this property.
   */
  get writable(): boolean {
    return this.#closing === undefined
  }

  /**
   * Called by pino with each serialized line. Returns true (the line is in
   * the queue's ring, or was given to `onWriteError`).
   */
  write(line: string | Uint8Array): boolean {
    let bytes: Uint8Array
    if (typeof line === 'string') {
      let { read, written } = encoder.encodeInto(line, this.#scratch)
      if (read < line.length) {
        // 3 bytes per UTF-16 unit bound any UTF-8 encoding of the string.
        this.#scratch = new Uint8Array(Math.max(line.length * 3, this.#scratch.length * 2))
        ;({ written } = encoder.encodeInto(line, this.#scratch))
      }
      if (written > 0 && this.#scratch[written - 1] === NEWLINE) written--
      bytes = this.#scratch.subarray(0, written)
    } else {
      bytes = line.length > 0 && line[line.length - 1] === NEWLINE ? line.subarray(0, -1) : line
    }
    try {
      this.queue.enqueueRaw(bytes)
    } catch (err) {
      if (!this.#onWriteError) throw err
      this.#onWriteError(err as Error, typeof line === 'string' ? line : Buffer.from(line).toString('utf8'))
    }
    return true
  }

  /**
   * `queue.flush()`: resolves once every line written before the call is cut
   * into a batch and handed on — with the WAL in `mode: 'first'` and
   * `syncMode: 'always'`, once it is fdatasync'ed (it then survives `kill -9`
   * and a power cut). pino's `logger.flush(cb)` calls this with a callback
   * (`cb(err)`); without one it returns the promise.
   */
  flush(): Promise<void>
  flush(cb: (err?: Error) => void): void
  flush(cb?: (err?: Error) => void): Promise<void> | undefined {
    const done = this.ready.then(() => this.queue.flush())
    if (!cb) return done
    done.then(
      () => cb(),
      (err: Error) => cb(err),
    )
    return undefined
  }

  /**
   * Stops the queue the destination created (`queue.stop(options)`: what is in
   * memory is delivered for up to `timeoutMs`, the WAL keeps the rest) and
   * resolves with its report. A queue you passed is yours to stop: for it
   * this resolves undefined and changes nothing. Idempotent: later calls
   * return the same promise. Lines written to a stopped queue go to
   * `onWriteError` or throw `QueueClosedError`.
   */
  close(options?: { timeoutMs?: number }): Promise<StopReport | undefined> {
    this.#closing ??= this.#owned
      ? this.ready.then(
          () => this.queue.stop(options),
          () => this.queue.stop(options),
        )
      : Promise.resolve(undefined)
    return this.#closing
  }

  /** Stream-style `end()` (pino.multistream's `end()` calls it): `close()`. */
  end(): Promise<StopReport | undefined> {
    return this.close()
  }

  /** `await using destination = vinequeueDestination(...)` closes it at scope exit. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }
}

/**
 * Creates a pino destination writing to a VineQueue queue:
 * `pino(options, vinequeueDestination({ sender, wal }))`.
 *
 * @throws InvalidConfigError listing every bad option, the queue's included.
 */
export function vinequeueDestination(options: VineQueueDestinationOptions): VineQueueDestination {
  return new VineQueueDestination(options)
}

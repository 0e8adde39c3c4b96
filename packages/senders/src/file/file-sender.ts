import { type FileHandle, open } from 'node:fs/promises'
import {
  type Batch,
  defineSender,
  encodeJsonItems,
  type ItemFailure,
  SendError,
  type SenderFactory,
} from '@vinequeue/core/sender'
import { type FileSenderOptions, resolveOptions } from './options.ts'

/** Where the lines go: a file kept open, or stdout. */
interface Sink {
  write(bytes: Uint8Array): Promise<void>
  close(): Promise<void>
}

/**
 * The file sender: each batch becomes NDJSON lines appended to a file (or
 * written to stdout). The queue calls this factory once per sender thread;
 * the thread's file handle stays open until `close()`, which fsyncs and
 * closes it. The file is opened here, so a path that cannot be opened makes
 * `queue.start()` reject.
 */
const createFileSender: SenderFactory<FileSenderOptions | undefined> = defineSender(
  async (options: FileSenderOptions | undefined) => {
    const { path, fsync } = resolveOptions(options)
    const sink = path === undefined ? stdoutSink() : fileSink(await open(path, 'a'), fsync)
    return {
      // A local append is not abortable: ctx.signal is not used.
      async send(batch) {
        const { bytes, failed } = toNdjson(batch)
        // A throw (I/O error) fails the whole batch; the queue retries it.
        if (bytes.byteLength > 0) await sink.write(bytes)
        // Items that cannot be written as JSON are reported, not silently
        // skipped: `retryable: false` sends them to dead letters at once.
        return failed.length > 0 ? { failed } : undefined
      },
      /** Waits for this thread's writes, fsyncs and closes the file. Idempotent. */
      close: () => sink.close(),
    }
  },
)
export default createFileSender

/**
 * Appends through one O_APPEND descriptor ('a'), one write(2) per batch, so
 * that the batches of concurrent sends (senderConcurrency per thread, and
 * other threads with their own descriptor) land whole, never interleaved.
 * The writes of this thread are also chained, so that the rare short write
 * (disk full, a signal), finished by a second write(2), cannot let another
 * batch of this thread in between.
 */
function fileSink(handle: FileHandle, fsync: boolean): Sink {
  let tail: Promise<void> = Promise.resolve()
  let closed: Promise<void> | undefined
  return {
    write(bytes) {
      if (closed) return Promise.reject(new SendError('file sender is closed', { retryable: true }))
      const written = tail.then(() => writeAll(handle, bytes))
      tail = written.catch(() => {})
      // The fsync is outside the chain: it covers every write before it, and
      // the next batch's write need not wait for it.
      return fsync ? written.then(() => handle.sync()) : written
    },
    close() {
      closed ??= tail.then(async () => {
        try {
          await handle.sync()
        } finally {
          // FileHandle.close() waits for operations still running on it (fsyncs of sends).
          await handle.close()
        }
      })
      return closed
    },
  }
}

async function writeAll(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  let offset = 0
  while (offset < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, offset)
    offset += bytesWritten
  }
}

/** In a worker thread, process.stdout forwards to the main thread's stdout. It is never closed here. */
function stdoutSink(): Sink {
  let tail: Promise<void> = Promise.resolve()
  return {
    write(bytes) {
      const written = new Promise<void>((resolve, reject) => {
        process.stdout.write(bytes, (err) => (err ? reject(err) : resolve()))
      })
      tail = written.catch(() => {})
      return written
    },
    close: () => tail,
  }
}

/**
 * One JSON line per item (see encodeJsonItems: raw items are their UTF-8
 * text, one line each; an empty or multi-line one fails permanently rather
 * than break the framing).
 */
function toNdjson(batch: Batch): { bytes: Uint8Array; failed: readonly ItemFailure[] } {
  const { parts, indices, failed } = encodeJsonItems(batch, { lines: true })
  let text = ''
  for (const i of indices) text += `${parts[i] as string}\n`
  return { bytes: Buffer.from(text), failed }
}

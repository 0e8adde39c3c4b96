import { type FileHandle, open } from 'node:fs/promises'
import {
  type Batch,
  defineSender,
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

const decoder = new TextDecoder()
const encoder = new TextEncoder()

/**
 * One JSON line per item. Items from `enqueueRaw` are written as their UTF-8
 * text: one line each (a trailing newline is dropped; an empty item or one
 * spanning several lines fails permanently rather than break the framing).
 */
function toNdjson(batch: Batch): { bytes: Uint8Array; failed: ItemFailure[] } {
  const failed: ItemFailure[] = []
  const items = batch.items()
  // items() gives raw items as Uint8Array, like a msgpack `bin` value; the
  // payloads' `raw` flag tells them apart (looked up only if one is there).
  let raw: boolean[] | undefined
  let text = ''
  for (let index = 0; index < items.length; index++) {
    const item = items[index]
    if (item instanceof Uint8Array && (raw ??= batch.payloads().map((p) => p.raw))[index]) {
      let line = decoder.decode(item)
      if (line.endsWith('\n')) line = line.slice(0, line.endsWith('\r\n') ? -2 : -1)
      if (line.trim() === '') failed.push({ index, retryable: false, reason: 'raw item is empty' })
      else if (line.includes('\n')) {
        failed.push({ index, retryable: false, reason: 'raw item spans several lines: not one NDJSON line' })
      } else text += `${line}\n`
      continue
    }
    try {
      // JSON.stringify(undefined) is undefined, not a document: write null.
      text += `${JSON.stringify(item) ?? 'null'}\n`
    } catch (err) {
      failed.push({ index, retryable: false, reason: `not JSON-serializable: ${(err as Error).message}` })
    }
  }
  return { bytes: encoder.encode(text), failed }
}

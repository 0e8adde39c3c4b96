import { open } from 'node:fs/promises'
import { defineSender, type ItemFailure, type SenderFactory } from '@vinequeue/core/sender'
import { type FileSenderOptions, resolveOptions } from './options.ts'

/**
 * The sender module contract, end to end. The queue loads this module once
 * per sender thread and calls the default export with the (cloned) options;
 * the object it returns gets every batch that thread sends.
 */
const createFileSender: SenderFactory<FileSenderOptions | undefined> = defineSender(
  (options: FileSenderOptions | undefined) => {
    const { path, fsync } = resolveOptions(options)
    const write = path === undefined ? writeStdout : (bytes: Uint8Array) => appendToFile(path, bytes, fsync)

    return {
      // A sender that does network I/O would also take `ctx` and pass
      // `ctx.signal` on (fetch(url, { signal })); a local append is not abortable.
      async send(batch) {
        const { bytes, failed } = toNdjson(batch.items())
        // A throw (I/O error) fails the whole batch; the queue retries it.
        if (bytes.byteLength > 0) await write(bytes)
        // Items that cannot be written as JSON are reported, not silently
        // skipped: `retryable: false` sends them to dead letters at once.
        return failed.length > 0 ? { failed } : undefined
      },
    }
  },
)
export default createFileSender

const decoder = new TextDecoder()
const encoder = new TextEncoder()

/** One JSON line per item; raw items (Uint8Array from enqueueRaw) are written as their UTF-8 text. */
function toNdjson(items: readonly unknown[]): { bytes: Uint8Array; failed: ItemFailure[] } {
  const failed: ItemFailure[] = []
  let text = ''
  for (let index = 0; index < items.length; index++) {
    const item = items[index]
    if (item instanceof Uint8Array) {
      text += `${decoder.decode(item)}\n`
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

/**
 * Appends one batch with a single write on an O_APPEND descriptor. Several
 * sends run at once (sender threads × senderConcurrency); one write(2) per
 * batch keeps their lines from interleaving. (`appendFile` would split a
 * batch over 512 KiB into several writes.)
 */
async function appendToFile(path: string, bytes: Uint8Array, fsync: boolean): Promise<void> {
  const file = await open(path, 'a')
  try {
    let offset = 0
    while (offset < bytes.byteLength) {
      const { bytesWritten } = await file.write(bytes, offset)
      offset += bytesWritten
    }
    if (fsync) await file.sync()
  } finally {
    await file.close()
  }
}

/** In a worker thread, process.stdout forwards to the main thread's stdout. */
function writeStdout(bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(bytes, (err) => (err ? reject(err) : resolve()))
  })
}

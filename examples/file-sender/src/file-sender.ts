import { open } from 'node:fs/promises'
import {
  type Batch,
  defineSender,
  encodeJsonItems,
  type ItemFailure,
  type SenderFactory,
} from '@vinequeue/core/sender'
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
        const { bytes, failed } = toNdjson(batch)
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

/**
 * One JSON line per item, with the senders' shared encoder: raw items are
 * their UTF-8 text (one line each), items JSON cannot write come back as
 * permanent per-item failures.
 */
function toNdjson(batch: Batch): { bytes: Uint8Array; failed: readonly ItemFailure[] } {
  const { parts, indices, failed } = encodeJsonItems(batch, { lines: true })
  let text = ''
  for (const i of indices) text += `${parts[i] as string}\n`
  return { bytes: Buffer.from(text), failed }
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

import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs'
import { Batch, decodeItemsLenient, UndecodableItem } from '../batch/batch-format.ts'

/**
 * The dead-letter file (`deadLetterFile`): one NDJSON line per item given up
 * on, `{"at":ISO time,"reason","attempts","item"}` (raw items as
 * `{"raw":"<base64>"}`), appended by the pipeline thread — the WAL's owner —
 * and fdatasync'ed per write when the WAL syncs always. Opened once, mode 0600.
 */
export class DeadLetterFile {
  readonly #fd: number
  readonly #sync: boolean

  constructor(path: string, sync: boolean) {
    this.#fd = openSync(path, 'a', 0o600)
    this.#sync = sync
  }

  write(bytes: Uint8Array, count: number, reason: string, attempts: number): void {
    const at = new Date().toISOString()
    let text = ''
    const items = decodeItemsLenient(bytes, count)
    let payloads: Array<{ bytes: Uint8Array }> | undefined
    for (let i = 0; i < items.length; i++) {
      const item = items[i]
      const value =
        item instanceof UndecodableItem
          ? { raw: Buffer.from(item.raw).toString('base64'), error: item.decodeError }
          : item instanceof Uint8Array
            ? { raw: Buffer.from(item).toString('base64') }
            : item
      let json: string
      try {
        json = JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) ?? 'null'
      } catch {
        // Not JSON (e.g. circular): still recorded, as its msgpack bytes.
        payloads ??= new Batch(bytes, count, 0).payloads()
        json = JSON.stringify({ msgpack: Buffer.from(payloads[i]!.bytes).toString('base64') })
      }
      text += `{"at":"${at}","reason":${JSON.stringify(reason)},"attempts":${attempts},"item":${json}}\n`
    }
    const out = Buffer.from(text)
    let done = 0
    while (done < out.byteLength) done += writeSync(this.#fd, out, done, out.byteLength - done)
    if (this.#sync) fdatasyncSync(this.#fd)
  }

  close(): void {
    try {
      closeSync(this.#fd)
    } catch {}
  }
}

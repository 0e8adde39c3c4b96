import { Batch, decodeItemsLenient, UndecodableItem } from '../batch/batch-format.ts'
import { type ErrorInfo, errorInfo } from './protocol.ts'

/** (node:fs without an ES import, which would build its namespace and load fs streams: 1.4 ms of the pipeline thread's start-up, note `start.builtin_fs` in packages/bench/README.md.) */
const { closeSync, fdatasyncSync, openSync, writeSync } = process.getBuiltinModule('node:fs')

/** How often lines that could not be written are tried again (ms). */
export const DEAD_LETTER_RETRY_MS = 1000
/** Most text kept for the file while it cannot be written (bytes); dead letters past it go only to onDeadLetter and the event. */
export const DEAD_LETTER_PENDING_BYTES: number = 16 * 1024 * 1024

/** What the file's owner hears: a failure (with how many items wait), or `error` undefined once all is written. */
export type DeadLetterFileReport = (report: {
  readonly error?: ErrorInfo
  /** Dead-lettered items kept in memory, not yet in the file. */
  readonly pendingItems: number
  /** Items of this write not kept for the file (over DEAD_LETTER_PENDING_BYTES). */
  readonly notKept?: number
}) => void

/**
 * The dead-letter file (`deadLetterFile`): one NDJSON line per item given up
 * on, `{"at":ISO time,"reason","attempts","item"}` (raw items as
 * `{"raw":"<base64>"}`), appended by the pipeline thread — the WAL's owner —
 * and fdatasync'ed per write when the WAL syncs always. Opened once, mode 0600.
 *
 * A write that fails (ENOSPC, EIO, …) is never fatal: the lines are kept in
 * memory (up to DEAD_LETTER_PENDING_BYTES) and written, in order, with the
 * next dead letter or every DEAD_LETTER_RETRY_MS, the file reopened first (it
 * may have been moved or its file system remounted). A line cut short by a
 * failed write is finished from where it stopped, so no line is torn or
 * doubled. The items themselves already went to onDeadLetter and the
 * `deadLetter` event, whatever becomes of the file.
 */
export class DeadLetterFile {
  readonly #path: string
  #fd: number | undefined
  readonly #sync: boolean
  readonly #report: DeadLetterFileReport
  /** Text not yet in the file, oldest first; `written` bytes of the head are. */
  readonly #pending: Array<{ text: Buffer; count: number; written: number }> = []
  #pendingBytes = 0
  #pendingItems = 0
  #failing = false
  #retryTimer: NodeJS.Timeout | undefined

  /** `fd`: the file, opened for appending before `ready` (start-up.ts), so that start() fails if it cannot be. */
  constructor(path: string, fd: number, sync: boolean, report: DeadLetterFileReport) {
    this.#path = path
    this.#fd = fd
    this.#sync = sync
    this.#report = report
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
    let notKept = 0
    if (this.#pending.length > 0 && this.#pendingBytes + out.byteLength > DEAD_LETTER_PENDING_BYTES) {
      notKept = count
    } else {
      this.#pending.push({ text: out, count, written: 0 })
      this.#pendingBytes += out.byteLength
      this.#pendingItems += count
    }
    const error = this.#writePending()
    if (error || notKept > 0) {
      this.#report({ error: error ?? this.#lastError, pendingItems: this.#pendingItems, notKept })
    }
  }

  #lastError: ErrorInfo | undefined

  /** Writes what is pending, in order. Returns the error that stopped it, if any. */
  #writePending(): ErrorInfo | undefined {
    try {
      if (this.#fd === undefined) this.#fd = openSync(this.#path, 'a', 0o600)
      while (this.#pending.length > 0) {
        const head = this.#pending[0]!
        while (head.written < head.text.byteLength) {
          head.written += writeSync(this.#fd, head.text, head.written, head.text.byteLength - head.written)
        }
        if (this.#sync) fdatasyncSync(this.#fd)
        this.#pending.shift()
        this.#pendingBytes -= head.text.byteLength
        this.#pendingItems -= head.count
      }
    } catch (err) {
      const info = errorInfo(err)
      this.#lastError = info
      this.#failing = true
      // Reopen before the next try: the path may have been moved, replaced or remounted.
      this.#closeFd()
      this.#retryTimer ??= setInterval(() => this.#retry(), DEAD_LETTER_RETRY_MS)
      this.#retryTimer.unref()
      return info
    }
    if (this.#failing) {
      this.#failing = false
      this.#lastError = undefined
      clearInterval(this.#retryTimer)
      this.#retryTimer = undefined
      this.#report({ pendingItems: 0 })
    }
    return undefined
  }

  #retry(): void {
    // (A failure again is already reported: health() shows the items waiting.)
    this.#writePending()
  }

  #closeFd(): void {
    if (this.#fd === undefined) return
    try {
      closeSync(this.#fd)
    } catch {}
    this.#fd = undefined
  }

  /** Tries what is pending a last time (a failure is reported), then closes. */
  close(): void {
    clearInterval(this.#retryTimer)
    this.#retryTimer = undefined
    if (this.#pending.length > 0) {
      const error = this.#writePending()
      clearInterval(this.#retryTimer)
      this.#retryTimer = undefined
      if (error) this.#report({ error, pendingItems: this.#pendingItems })
    }
    this.#closeFd()
  }
}

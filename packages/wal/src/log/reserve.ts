import { join } from 'node:path'
import type { WalFs } from './fs.ts'
import { writeFully } from './io.ts'
import { FILE_MODE, RESERVE_FILE } from './layout.ts'

/**
 * A file of RESERVE_BYTES zeros, `reserve`, kept in the log's directory and
 * given back when the log's own bookkeeping meets ENOSPC (the lock at open,
 * creating or overwriting the watermark, a copy to quarantine): a full disk
 * must never keep the log from starting or from recording what was
 * delivered, since that recording is what lets it delete segments and get
 * space back. Made again (best effort) at open and once deletions give space
 * back.
 */
export const RESERVE_BYTES: number = 64 * 1024

export function isNoSpace(err: unknown): boolean {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | undefined
  return e?.code === 'ENOSPC' || e?.cause?.code === 'ENOSPC'
}

export class Reserve {
  readonly #fs: WalFs
  readonly #path: string
  /** The file is there (or making it failed for a reason other than space: not tried again). */
  #kept = false

  constructor(fs: WalFs, dir: string) {
    this.#fs = fs
    this.#path = join(dir, RESERVE_FILE)
  }

  /** Runs bookkeeping that needs a little space; on ENOSPC gives the reserve back and tries once more. */
  run<T>(fn: () => T): T {
    try {
      return fn()
    } catch (err) {
      if (!isNoSpace(err) || !this.#release()) throw err
      return fn()
    }
  }

  #release(): boolean {
    try {
      this.#fs.unlinkSync(this.#path)
    } catch {
      return false
    }
    this.#kept = false
    return true
  }

  /** Makes the file if it is not there (best effort: without space, the next call tries again). */
  keep(): void {
    if (this.#kept) return
    const fs = this.#fs
    let fd: number
    try {
      fd = fs.openSync(this.#path, 'wx', FILE_MODE)
    } catch (err) {
      if (!isNoSpace(err)) this.#kept = true // (EEXIST: there already)
      return
    }
    try {
      const zeros = new Uint8Array(RESERVE_BYTES)
      writeFully(fs, fd, zeros, 0)
      fs.fdatasyncSync(fd)
      this.#kept = true
    } catch {
      try {
        fs.unlinkSync(this.#path)
      } catch {}
    } finally {
      fs.closeSync(fd)
    }
  }
}

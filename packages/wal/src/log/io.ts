import { join } from 'node:path'
import { WalError, WalErrorCodes } from '../errors.ts'
import type { WalFs } from './fs.ts'
import { FILE_MODE, tmpName } from './layout.ts'

/**
 * The I/O helpers every part of the log uses, so that a failure reads the
 * same wherever it happens: a WalError IO naming what failed, the system
 * error (ENOSPC, EIO…) in `cause` — which is where reserve.ts looks for
 * ENOSPC.
 */

export function ioError(what: string, cause: unknown): WalError {
  return new WalError(WalErrorCodes.IO, `WAL ${what} failed: ${(cause as Error).message}`, { cause })
}

/**
 * Runs `fn` with `path` opened with `flags`, and closes it. A failure to open
 * reads `opening <path>`, one in `fn` that is not a WalError already
 * `writing <path>`.
 */
export function withFd<T>(fs: WalFs, path: string, flags: string, fn: (fd: number) => T): T {
  let fd: number
  try {
    fd = fs.openSync(path, flags, FILE_MODE)
  } catch (cause) {
    throw ioError(`opening ${path}`, cause)
  }
  try {
    return fn(fd)
  } catch (cause) {
    throw cause instanceof WalError ? cause : ioError(`writing ${path}`, cause)
  } finally {
    fs.closeSync(fd)
  }
}

/** Writes all of `bytes` at `position` (a write may be short); throws the system error. */
export function writeFully(fs: WalFs, fd: number, bytes: Uint8Array, position: number): void {
  let done = 0
  while (done < bytes.byteLength) {
    done += fs.writeSync(fd, bytes, done, bytes.byteLength - done, position + done)
  }
}

/**
 * Creates or replaces the control file `dir/name` whole: written to
 * `<name>.tmp`, fdatasync'ed, renamed over `name` — a crash leaves the old
 * file or the new one, never part of either. (`what` names it in errors.)
 */
export function writeControlFile(
  fs: WalFs,
  dir: string,
  name: string,
  bytes: Uint8Array,
  what: string,
): void {
  const tmp = join(dir, tmpName(name))
  withFd(fs, tmp, 'w', (fd) => {
    writeFully(fs, fd, bytes, 0)
    fs.fdatasyncSync(fd)
  })
  try {
    fs.renameSync(tmp, join(dir, name))
  } catch (cause) {
    throw ioError(`renaming ${what}`, cause)
  }
}

/**
 * fdatasync or fsync of `fd` in libuv's thread pool, so the owner thread
 * appends meanwhile; on this thread for a file-system layer without the
 * callback forms. Rejects with the system error.
 */
export function syncInBackground(fs: WalFs, fd: number, call: 'fdatasync' | 'fsync'): Promise<void> {
  const background = call === 'fdatasync' ? fs.fdatasync : fs.fsync
  if (!background) {
    try {
      if (call === 'fdatasync') fs.fdatasyncSync(fd)
      else fs.fsyncSync(fd)
      return Promise.resolve()
    } catch (err) {
      return Promise.reject(err)
    }
  }
  return new Promise((resolve, reject) => background.call(fs, fd, (err) => (err ? reject(err) : resolve())))
}

/**
 * Opens `path` in libuv's thread pool (creating a file waits for the file
 * system's journal: ext4 held one for 124 ms here); on this thread for a
 * file-system layer without the callback form. Rejects with the system error.
 */
export function openInBackground(fs: WalFs, path: string, flags: string): Promise<number> {
  const open = fs.open
  if (!open) {
    try {
      return Promise.resolve(fs.openSync(path, flags, FILE_MODE))
    } catch (err) {
      return Promise.reject(err)
    }
  }
  return new Promise((resolve, reject) =>
    open.call(fs, path, flags, FILE_MODE, (err, fd) => (err ? reject(err) : resolve(fd))),
  )
}

/** Closes `fd` in libuv's thread pool (on this thread without the callback form). Rejects with the system error. */
export function closeInBackground(fs: WalFs, fd: number): Promise<void> {
  const close = fs.close
  if (!close) {
    try {
      fs.closeSync(fd)
      return Promise.resolve()
    } catch (err) {
      return Promise.reject(err)
    }
  }
  return new Promise((resolve, reject) => close.call(fs, fd, (err) => (err ? reject(err) : resolve())))
}

import { join } from 'node:path'
import { WalError, WalErrorCodes } from '../errors.ts'
import type { WalFs } from './fs.ts'
import { ioError } from './io.ts'
import { FILE_MODE, LOCK_FILE, lockTmpName } from './layout.ts'

/** (node:fs as fs.ts takes it: no ES import.) */
const { readFileSync } = process.getBuiltinModule('node:fs')

/**
 * One live WriteAheadLog per directory. Two owners appending to the same
 * segment at their own offsets would interleave frames into garbage (a
 * rolling deploy starting the new process before the old one stopped, or two
 * queues given the same `wal.dir`), so opening takes a `lock` file, created
 * exclusively (O_EXCL), holding its owner: process id, the process's start
 * time (Linux: /proc/<pid>/stat) and the boot id. Node has no flock(2); a
 * lock left by a crashed process is recognised as stale when that process
 * is gone — or when the pid now belongs to a process started at another time
 * (after a container restart the new process often gets the old pid) or
 * after a reboot — and taken over. `close()` removes it.
 */
interface LockOwner {
  readonly pid: number
  /** The process's start time in clock ticks since boot (Linux), when known. */
  readonly start?: string
  /** /proc/sys/kernel/random/boot_id (Linux), when known. */
  readonly boot?: string
}

/**
 * How long a live owner is waited for before LOCKED: a process being killed
 * or stopping (a supervisor restarting a service, a queue stopped while its
 * successor starts) lets go within it.
 */
const LOCK_WAIT_MS = 2000
const LOCK_POLL_MS = 50

/**
 * The process's start time (clock ticks since boot), or undefined when there
 * is no such process — or only its zombie: a killed process not reaped yet by
 * its parent (a supervisor that starts the new process before it reaps the
 * old one) holds nothing any more.
 */
function procStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    // Fields after the command name (which may hold spaces and parentheses): state is field 3, starttime field 22.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (fields[0] === 'Z' || fields[0] === 'X') return undefined
    return fields[19]
  } catch {
    return undefined
  }
}

let bootIdCache: string | null | undefined
function bootId(): string | undefined {
  if (bootIdCache === undefined) {
    try {
      bootIdCache = readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim()
    } catch {
      bootIdCache = null
    }
  }
  return bootIdCache ?? undefined
}

function self(): LockOwner {
  const start = procStart(process.pid)
  const boot = bootId()
  return { pid: process.pid, ...(start ? { start } : {}), ...(boot ? { boot } : {}) }
}

/** Whether the process that wrote `owner` is still running. */
function alive(owner: LockOwner): boolean {
  const boot = bootId()
  if (owner.boot && boot && owner.boot !== boot) return false
  if (owner.start !== undefined) {
    const now = procStart(owner.pid)
    if (now !== undefined || process.platform === 'linux') return now === owner.start
  }
  try {
    process.kill(owner.pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function parse(bytes: Uint8Array): LockOwner | undefined {
  try {
    const v = JSON.parse(Buffer.from(bytes).toString('utf8')) as LockOwner
    return Number.isInteger(v?.pid) && v.pid > 0 ? v : undefined
  } catch {
    return undefined
  }
}

function write(fs: WalFs, path: string, flags: string, owner: LockOwner): void {
  const fd = fs.openSync(path, flags, FILE_MODE)
  try {
    const bytes = Buffer.from(JSON.stringify(owner))
    fs.writeSync(fd, bytes, 0, bytes.byteLength, 0)
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * Takes the directory's lock, or throws WalError LOCKED naming its live
 * owner. A damaged or stale lock is replaced.
 */
export function acquireDirLock(fs: WalFs, dir: string): void {
  const path = join(dir, LOCK_FILE)
  const me = self()
  const deadline = performance.now() + LOCK_WAIT_MS
  let owner: LockOwner | undefined
  for (;;) {
    try {
      write(fs, path, 'wx', me)
      return
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(`creating ${path}`, cause)
    }
    owner = undefined
    try {
      owner = parse(fs.readFileSync(path))
    } catch {}
    if (!owner || !alive(owner) || performance.now() >= deadline) break
    // A live owner: wait a little for it to close or die (this thread only opens the log).
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, LOCK_POLL_MS)
  }
  if (owner && alive(owner)) {
    const who =
      owner.pid === process.pid ? 'this process (another queue or WriteAheadLog)' : `process ${owner.pid}`
    throw new WalError(
      WalErrorCodes.LOCKED,
      `The WAL in ${dir} is in use by ${who} (waited ${LOCK_WAIT_MS} ms): one live WriteAheadLog per directory (its lock file: ${path})`,
    )
  }
  // Stale (its process is gone) or unreadable: take it over.
  // Not a control file (io.ts writeControlFile): no fdatasync, since a lock
  // needs to outlive its process, not a power loss (after a reboot it is
  // stale anyway).
  const tmp = join(dir, lockTmpName(process.pid))
  try {
    write(fs, tmp, 'w', me)
    fs.renameSync(tmp, path)
  } catch (cause) {
    throw ioError(`replacing the stale lock ${path}`, cause)
  }
}

/**
 * The directory's lock as a reader sees it (the CLI): its owner's pid and
 * whether that process still runs; undefined when there is none (or it is
 * unreadable).
 */
export function readDirLock(dir: string): { readonly pid: number; readonly alive: boolean } | undefined {
  let owner: LockOwner | undefined
  try {
    owner = parse(readFileSync(join(dir, LOCK_FILE)))
  } catch {}
  return owner ? { pid: owner.pid, alive: alive(owner) } : undefined
}

/** Removes the lock (best effort: a lock left behind is stale once this process is gone). */
export function releaseDirLock(fs: WalFs, dir: string): void {
  try {
    fs.unlinkSync(join(dir, LOCK_FILE))
  } catch {}
}

/**
 * node:fs through process.getBuiltinModule, not an ES import: importing it
 * builds its namespace, whose lazy getters load fs streams and promises
 * (1.4 ms of a fresh thread's start-up, note `start.builtin_fs` in
 * packages/bench/README.md).
 */
const fs = process.getBuiltinModule('node:fs')

/**
 * The file-system calls the WAL makes, all synchronous (the WAL has one owner
 * thread, which may block). Tests pass their own implementation to inject
 * faults (ENOSPC, EIO) the way LevelDB's FaultInjectionTestEnv does.
 */
export interface WalFs {
  mkdirSync(path: string, options: { recursive: true; mode: number }): void
  readdirSync(path: string): string[]
  readFileSync(path: string): Uint8Array
  openSync(path: string, flags: string, mode?: number): number
  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number, position?: number | null): number
  readSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number
  /**
   * The callback form (in libuv's thread pool): the next segment is created
   * with it while the current one fills. Optional: without it a rotation
   * creates the new segment on the owner thread.
   */
  open?(
    path: string,
    flags: string,
    mode: number,
    callback: (err: NodeJS.ErrnoException | null, fd: number) => void,
  ): void
  /** The callback form (in libuv's thread pool); optional like open. */
  close?(fd: number, callback: (err: NodeJS.ErrnoException | null) => void): void
  fdatasyncSync(fd: number): void
  /**
   * The callback form, run in libuv's thread pool (`syncAsync`). Optional: a
   * layer without it gets its fdatasyncSync called on the owner thread.
   */
  fdatasync?(fd: number, callback: (err: NodeJS.ErrnoException | null) => void): void
  fsyncSync(fd: number): void
  /** The callback form (in libuv's thread pool); optional like fdatasync. */
  fsync?(fd: number, callback: (err: NodeJS.ErrnoException | null) => void): void
  ftruncateSync(fd: number, length: number): void
  fstatSizeSync(fd: number): number
  closeSync(fd: number): void
  renameSync(from: string, to: string): void
  unlinkSync(path: string): void
  /**
   * The callback form, run in libuv's thread pool (`deleteInBackground`).
   * Optional: a layer without it gets its unlinkSync called on the owner thread.
   */
  unlink?(path: string, callback: (err: NodeJS.ErrnoException | null) => void): void
}

export const nodeFs: WalFs = {
  mkdirSync: (path, options) => void fs.mkdirSync(path, options),
  readdirSync: (path) => fs.readdirSync(path),
  readFileSync: (path) => fs.readFileSync(path),
  openSync: (path, flags, mode) => fs.openSync(path, flags, mode),
  open: (path, flags, mode, callback) => fs.open(path, flags, mode, callback),
  close: (fd, callback) => fs.close(fd, callback),
  writeSync: (fd, buffer, offset, length, position) => fs.writeSync(fd, buffer, offset, length, position),
  readSync: (fd, buffer, offset, length, position) => fs.readSync(fd, buffer, offset, length, position),
  fdatasyncSync: (fd) => fs.fdatasyncSync(fd),
  fdatasync: (fd, callback) => fs.fdatasync(fd, callback),
  fsyncSync: (fd) => fs.fsyncSync(fd),
  fsync: (fd, callback) => fs.fsync(fd, callback),
  ftruncateSync: (fd, length) => fs.ftruncateSync(fd, length),
  fstatSizeSync: (fd) => fs.fstatSync(fd).size,
  closeSync: (fd) => fs.closeSync(fd),
  renameSync: (from, to) => fs.renameSync(from, to),
  unlinkSync: (path) => fs.unlinkSync(path),
  unlink: (path, callback) => fs.unlink(path, callback),
}

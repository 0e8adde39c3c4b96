import { spawn, spawnSync } from 'node:child_process'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { WalError, WriteAheadLog } from '@vinequeue/wal'
import { describe, expect, it } from 'vitest'
import { tempDirs } from './temp-dirs.ts'

const tempDir = tempDirs('vq-wal-lock-')
const startTime = (pid: number): string => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!
}
const bootId = (): string => readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim()
const lockedError = (dir: string): WalError | undefined => {
  try {
    WriteAheadLog.open(dir).close()
  } catch (err) {
    return err as WalError
  }
}

describe('one live WriteAheadLog per directory', () => {
  it('a second open in the same process is refused (VQ_WAL_LOCKED) until the first closes; the lock goes with close()', () => {
    const dir = tempDir()
    const a = WriteAheadLog.open(dir)
    expect(statSync(join(dir, 'lock')).mode & 0o777).toBe(0o600)
    const err = lockedError(dir)
    expect(err).toBeInstanceOf(WalError)
    expect(err!.code).toBe('VQ_WAL_LOCKED')
    expect(err!.message).toMatch(/in use by this process/)
    a.append(new Uint8Array([1]), 1)
    a.close()
    expect(() => statSync(join(dir, 'lock'))).toThrow()
    const b = WriteAheadLog.open(dir)
    expect([...b.frames()].length).toBe(1)
    b.close()
  })

  it('a lock held by another live process is refused; once that process is gone it is taken over', async () => {
    const dir = tempDir()
    WriteAheadLog.open(dir).close()
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' })
    const pid = child.pid!
    writeFileSync(join(dir, 'lock'), JSON.stringify({ pid, start: startTime(pid), boot: bootId() }))
    const err = lockedError(dir)
    expect(err?.code).toBe('VQ_WAL_LOCKED')
    expect(err!.message).toContain(`process ${pid}`)
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
    const wal = WriteAheadLog.open(dir) // stale: its process is gone
    expect(JSON.parse(readFileSync(join(dir, 'lock'), 'utf8')).pid).toBe(process.pid)
    wal.close()
  })

  it('a lock held by a killed process not reaped yet (a zombie) is taken over', () => {
    const dir = tempDir()
    WriteAheadLog.open(dir).close()
    // A child whose own child is SIGKILLed and left unreaped: a zombie while the child sleeps.
    const script = `
      const { spawn } = require('node:child_process')
      const c = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' })
      const start = require('node:fs').readFileSync('/proc/' + c.pid + '/stat', 'latin1')
      process.stdout.write(JSON.stringify({ pid: c.pid, start: start.slice(start.lastIndexOf(')') + 2).split(' ')[19] }))
      c.kill('SIGKILL')
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1500) // blocks: SIGCHLD is not handled, the zombie stays
    `
    const parent = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
    return new Promise<void>((resolve, reject) => {
      parent.stdout.once('data', (chunk: Buffer) => {
        try {
          const { pid, start } = JSON.parse(chunk.toString()) as { pid: number; start: string }
          const deadline = Date.now() + 1000
          while (!readFileSync(`/proc/${pid}/stat`, 'latin1').includes(') Z ') && Date.now() < deadline) {}
          expect(readFileSync(`/proc/${pid}/stat`, 'latin1')).toContain(') Z ')
          writeFileSync(join(dir, 'lock'), JSON.stringify({ pid, start, boot: bootId() }))
          WriteAheadLog.open(dir).close()
          resolve()
        } catch (err) {
          reject(err)
        }
      })
    }).finally(() => parent.kill('SIGKILL'))
  })

  it('an owner that goes within the wait (a process being stopped) lets the open through instead of failing it', () => {
    const dir = tempDir()
    WriteAheadLog.open(dir).close()
    const exiting = spawn(process.execPath, ['-e', 'setTimeout(() => process.exit(0), 400)'], {
      stdio: 'ignore',
    })
    const pid = exiting.pid!
    writeFileSync(join(dir, 'lock'), JSON.stringify({ pid, start: startTime(pid), boot: bootId() }))
    const t0 = performance.now()
    const wal = WriteAheadLog.open(dir) // waits while the owner lives, then takes the lock over
    expect(performance.now() - t0).toBeLessThan(1900)
    wal.close()
  })

  it('stale locks are taken over: a dead pid, the same pid started at another time (a container restart), another boot, a damaged file', () => {
    const dir = tempDir()
    WriteAheadLog.open(dir).close()
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!
    const stale = [
      JSON.stringify({ pid: dead }),
      JSON.stringify({ pid: process.pid, start: '1', boot: bootId() }),
      JSON.stringify({ pid: process.pid, start: startTime(process.pid), boot: 'another-boot' }),
      'garbage',
    ]
    for (const content of stale) {
      writeFileSync(join(dir, 'lock'), content)
      const wal = WriteAheadLog.open(dir)
      wal.close()
    }
  })
})

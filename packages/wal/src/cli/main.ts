#!/usr/bin/env node
/**
 * `vinequeue-wal inspect DIR` — segments, frames, items, watermark, pending.
 * `vinequeue-wal verify DIR`  — checks every CRC and the sequence; lists damage
 *                               with offsets, gaps, and what is in quarantine.
 * `vinequeue-wal dump DIR`    — the pending items as NDJSON (dump.ts).
 * Exit codes (log-files.ts): 0 healthy, 1 something damaged or unreadable,
 * 2 usage error. Read-only: nothing is truncated or deleted (opening the log
 * with WriteAheadLog.open would).
 */
import { statSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { dump } from './dump.ts'
import { inspect } from './inspect.ts'
import { KeyError, loadKeys, wipeKeys } from './keys.ts'
import { ExitCode } from './log-files.ts'
import { verify } from './verify.ts'

const USAGE = `usage: vinequeue-wal inspect DIR
       vinequeue-wal verify DIR
       vinequeue-wal dump DIR [--all] [--from SEQ] [--quarantine] [--key-file PATH]... [--key-env NAME]...

dump prints one JSON line per item, in sequence order: {"seq":N,"item":…}, or
{"seq":N,"raw":"<base64>"} for an enqueueRaw item. By default only the items not
acknowledged yet; --all includes acknowledged items still on disk; --from SEQ
starts at SEQ; --quarantine prints the frames the log moved to its quarantine
folder (damage kept aside) instead. Keys of an encrypted log come from files or environment
variables, one "keyId:base64key" per line (a 32-byte AES-256 key).`

function usageError(message: string): number {
  process.stderr.write(`vinequeue-wal: ${message}\n${USAGE}\n`)
  return ExitCode.USAGE
}

function run(argv: readonly string[]): number {
  const [command, ...rest] = argv
  if (command === '--help' || command === '-h') {
    process.stdout.write(`${USAGE}\n`)
    return ExitCode.OK
  }
  if (command !== 'inspect' && command !== 'verify' && command !== 'dump') {
    return usageError(command === undefined ? 'no command' : 'unknown command')
  }
  let parsed: ReturnType<typeof parseCommandArgs>
  try {
    parsed = parseCommandArgs(rest)
  } catch (err) {
    // parseArgs names the option, never its value.
    return usageError((err as Error).message)
  }
  const { dir, values } = parsed
  if (command !== 'dump' && Object.keys(values).length > 0) return usageError(`${command} takes no options`)
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a directory')
  } catch (err) {
    process.stderr.write(`vinequeue-wal: ${dir}: ${(err as Error).message}\n`)
    return ExitCode.USAGE
  }
  if (command === 'inspect') return inspect(dir)
  if (command === 'verify') return verify(dir)
  let fromSeq: number | undefined
  if (values.from !== undefined) {
    fromSeq = Number(values.from)
    if (!/^\d+$/.test(values.from) || !Number.isSafeInteger(fromSeq)) {
      return usageError('--from takes a sequence number (a non-negative integer)')
    }
  }
  let keys: Map<number, Buffer>
  try {
    keys = loadKeys(values['key-file'] ?? [], values['key-env'] ?? [])
  } catch (err) {
    if (err instanceof KeyError) return usageError(err.message)
    throw err
  }
  try {
    return dump(dir, { all: values.all ?? false, fromSeq, keys, quarantine: values.quarantine ?? false })
  } finally {
    wipeKeys(keys)
  }
}

const OPTIONS = {
  all: { type: 'boolean' },
  quarantine: { type: 'boolean' },
  from: { type: 'string' },
  'key-file': { type: 'string', multiple: true },
  'key-env': { type: 'string', multiple: true },
} as const

function parseCommandArgs(args: string[]) {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, strict: true, options: OPTIONS })
  // Extra arguments are not echoed: a key pasted on the command line by mistake stays off the terminal.
  if (positionals.length !== 1)
    throw new Error(positionals.length === 0 ? 'no directory' : 'too many arguments')
  return { dir: positionals[0]!, values }
}

// EPIPE (`dump | head`): the reader has what it wanted; dump stops at the next frame.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err
})
process.exitCode = run(process.argv.slice(2))

import { readFileSync } from 'node:fs'

/**
 * Decryption keys for `dump`, from files (`--key-file PATH`) and environment
 * variables (`--key-env NAME`), never from the command line (argv is visible
 * to every user of the machine through `ps`).
 *
 * Format, in a file or a variable: one key per line, `keyId:base64key` —
 * the key id (0–65535, as in the frame header) and the 32-byte AES-256 key in
 * standard or URL-safe base64. Blank lines and lines starting with `#` are
 * ignored.
 *
 * Key material never appears in a message: errors name the source and the
 * line number only.
 */

export class KeyError extends Error {
  override readonly name = 'KeyError'
}

const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/

/** Parses `text` (from `source`, used in messages) into `keys`. */
export function parseKeys(text: string, source: string, keys: Map<number, Buffer>): void {
  const lines = text.split(/\r?\n/)
  for (const [i, line] of lines.entries()) {
    const entry = line.trim()
    if (entry === '' || entry.startsWith('#')) continue
    const where = `${source} line ${i + 1}`
    const colon = entry.indexOf(':')
    const id = colon > 0 ? entry.slice(0, colon) : ''
    const encoded = colon > 0 ? entry.slice(colon + 1).trim() : ''
    if (!/^\d{1,5}$/.test(id) || Number(id) > 0xffff || !BASE64.test(encoded)) {
      throw new KeyError(
        `${where}: expected keyId:base64key (a key id from 0 to 65535, a colon, a base64 key)`,
      )
    }
    const key = Buffer.from(encoded, 'base64')
    if (key.byteLength !== 32) {
      key.fill(0)
      throw new KeyError(`${where}: key ${id} is not 32 bytes (AES-256)`)
    }
    const known = keys.get(Number(id))
    if (known && !known.equals(key)) {
      key.fill(0)
      throw new KeyError(`${where}: key ${id} is given twice, with different values`)
    }
    keys.set(Number(id), key)
  }
}

/** Reads every key file and variable; throws KeyError (no key material in it). */
export function loadKeys(files: readonly string[], envNames: readonly string[]): Map<number, Buffer> {
  const keys = new Map<number, Buffer>()
  for (const path of files) {
    let text: string
    try {
      text = readFileSync(path, 'utf8')
    } catch (err) {
      throw new KeyError(`key file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`)
    }
    parseKeys(text, `key file ${path}`, keys)
  }
  for (const name of envNames) {
    const text = process.env[name]
    if (text === undefined || text.trim() === '') {
      throw new KeyError(`environment variable ${name} is not set`)
    }
    parseKeys(text, `environment variable ${name}`, keys)
  }
  return keys
}

/** Overwrites the keys once they are no longer needed. */
export function wipeKeys(keys: Map<number, Buffer>): void {
  for (const key of keys.values()) key.fill(0)
  keys.clear()
}

import { join } from 'node:path'
import type { WalFs } from './fs.ts'
import { writeControlFile } from './io.ts'
import { ID_FILE } from './layout.ts'
import type { Reserve } from './reserve.ts'

/** 128 random bits in lowercase hex: the file holds exactly this, plus a newline. */
const LOG_ID = /^[0-9a-f]{32}$/

/**
 * The log's identity: a random id created with the directory and kept in its
 * `id` file, so that `<logId>:<sequence number>` names an item (or a batch,
 * by its first item) uniquely across every log anywhere, for the log's whole
 * life. Sequence numbers never go back within one identity: recovery takes
 * the next one from the last segment, or from the watermark when every
 * segment was delivered and deleted (a segment is only deleted once the
 * watermark, written and synced first, covers it). The one case where the
 * log cannot know how far it had numbered — no segment left and the
 * watermark missing or damaged (`continuous` false) — gets a new identity,
 * so a number that may be reused never pairs with the old id. A missing or
 * damaged `id` file also gets a new one (nothing to continue from).
 */
export function logIdentity(fs: WalFs, dir: string, reserve: Reserve, continuous: boolean): string {
  const kept = continuous ? readLogId(fs, dir) : undefined
  if (kept !== undefined) return kept
  const id = randomHex16()
  reserve.run(() => writeControlFile(fs, dir, ID_FILE, new TextEncoder().encode(`${id}\n`), 'the log id'))
  return id
}

/**
 * 128 random bits in hex: from /dev/urandom where there is one (the
 * kernel's generator, as node:crypto's; a read costs 0.04 ms where loading
 * node:crypto costs a fresh thread about 3 ms, note `start.log_id` in
 * packages/bench/README.md), else from node:crypto.
 */
function randomHex16(): string {
  const bytes = Buffer.alloc(16)
  try {
    const fs = process.getBuiltinModule('node:fs')
    const fd = fs.openSync('/dev/urandom', 'r')
    try {
      if (fs.readSync(fd, bytes, 0, 16, null) === 16) return bytes.toString('hex')
    } finally {
      fs.closeSync(fd)
    }
  } catch {}
  return process.getBuiltinModule('node:crypto').randomBytes(16).toString('hex')
}

/** The id in `dir/id`, or undefined when the file is missing, unreadable or not an id. */
export function readLogId(fs: Pick<WalFs, 'readFileSync'>, dir: string): string | undefined {
  try {
    const text = new TextDecoder().decode(fs.readFileSync(join(dir, ID_FILE))).trimEnd()
    return LOG_ID.test(text) ? text : undefined
  } catch {
    return undefined
  }
}

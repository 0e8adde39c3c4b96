import { checksum } from '../events.ts'

/** What the sink stored, sent to the parent for verification. */
export interface LedgerSnapshot {
  /** By event id: how many times it arrived (saturates at 255). */
  readonly copies: Uint8Array
  /** By event id: checksum of its first arrival. */
  readonly sums: Uint32Array
  /** Events stored, duplicates included. */
  readonly received: number
  /** Distinct ids stored. */
  readonly unique: number
  /** Repeated ids whose content differed from their first arrival. */
  readonly conflicting: number
  /** Lines without a valid id (not an event of this run). */
  readonly invalid: number
}

const LF = 0x0a
/** Every line the HTTP sender writes for a DemoEvent starts with this (JSON.stringify keeps key order). */
const PREFIX = Buffer.from('{"id":')
const COMMA = 0x2c

/**
 * The sink's record of every event: one slot per id. It reads only the id
 * from each NDJSON line and takes the checksum of the whole line's bytes:
 * any change to any field, the id included, makes the checksum differ from
 * the one the verifier computes from the event as it was produced, so a
 * full JSON parse would prove nothing more (and would cost the sink as
 * much CPU as the sender's encoding).
 */
export class Ledger {
  readonly #copies: Uint8Array
  readonly #sums: Uint32Array
  received = 0
  unique = 0
  conflicting = 0
  invalid = 0

  constructor(total: number) {
    this.#copies = new Uint8Array(total)
    this.#sums = new Uint32Array(total)
  }

  /** Stores every line of an NDJSON body. */
  recordBody(body: Buffer): void {
    let start = 0
    while (start < body.length) {
      let end = body.indexOf(LF, start)
      if (end === -1) end = body.length
      if (end > start) this.#recordLine(body.subarray(start, end))
      start = end + 1
    }
  }

  #recordLine(line: Buffer): void {
    const id = readId(line)
    if (id < 0 || id >= this.#copies.length) {
      this.invalid++
      return
    }
    const sum = checksum(line)
    const copies = this.#copies[id]!
    this.received++
    if (copies === 0) {
      this.#sums[id] = sum
      this.unique++
    } else if (this.#sums[id] !== sum) this.conflicting++
    if (copies < 255) this.#copies[id] = copies + 1
  }

  snapshot(): LedgerSnapshot {
    const { received, unique, conflicting, invalid } = this
    return { copies: this.#copies, sums: this.#sums, received, unique, conflicting, invalid }
  }
}

/** The id of a `{"id":123,…` line, or -1. */
function readId(line: Buffer): number {
  if (line.length <= PREFIX.length || line.compare(PREFIX, 0, PREFIX.length, 0, PREFIX.length) !== 0)
    return -1
  let id = 0
  let i = PREFIX.length
  for (; i < line.length && i < PREFIX.length + 16; i++) {
    const d = line[i]! - 0x30
    if (d < 0 || d > 9) break
    id = id * 10 + d
  }
  return i > PREFIX.length && line[i] === COMMA ? id : -1
}

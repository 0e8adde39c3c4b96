/**
 * The sink's bookkeeping (runs in the sink process): counts the items of
 * each request body, and in `latency` mode records each item's latency.
 */
import { ITEM_PACKR_OPTIONS } from '@vinequeue/wal/batch-records'
import { Unpackr } from 'msgpackr'
import { percentileOfSorted } from '../stats.ts'
import type { SinkLatency, SinkMode, SinkRound } from './protocol.ts'

/** Items of a msgpack array from its header (fixarray, array 16, array 32). */
export function msgpackArrayCount(body: Uint8Array): number {
  const b = body[0]
  if (b === undefined) throw new RangeError('empty msgpack body')
  if (b >= 0x90 && b <= 0x9f) return b & 0x0f
  if (b === 0xdc) return (body[1]! << 8) | body[2]!
  if (b === 0xdd) return ((body[1]! << 24) | (body[2]! << 16) | (body[3]! << 8) | body[4]!) >>> 0
  throw new RangeError(`not a msgpack array (first byte 0x${b.toString(16)})`)
}

/**
 * Top-level elements of a JSON array, without parsing it: a depth counter
 * over `[ ] { }` that skips string contents (escapes included), several
 * times cheaper than JSON.parse (note `sink.json_count` in the README), so
 * the naive baseline's sink costs little more than the queue's O(1) msgpack
 * count.
 */
export function jsonArrayCount(body: Uint8Array): number {
  let depth = 0
  let n = 0
  let inString = false
  let nonEmpty = false
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!
    if (inString) {
      // A backslash: skip the escaped byte.
      if (c === 0x5c) i++
      else if (c === 0x22) inString = false
      continue
    }
    if (c === 0x22) {
      inString = true
      if (depth === 1) nonEmpty = true
    } else if (c === 0x5b || c === 0x7b) {
      if (depth === 1) nonEmpty = true
      depth++
    } else if (c === 0x5d || c === 0x7d) depth--
    else if (c === 0x2c && depth === 1) n++
    else if (depth === 1 && c > 0x20) nonEmpty = true // a number, true, false, null
  }
  if (depth !== 0) throw new RangeError('unbalanced JSON array')
  return nonEmpty ? n + 1 : 0
}

const decoder = new TextDecoder()

export class Tally {
  readonly #unpackr = new Unpackr({ ...ITEM_PACKR_OPTIONS })
  #mode: SinkMode = 'count'
  #target = Number.POSITIVE_INFINITY
  #items = 0
  #requests = 0
  #cpu = process.cpuUsage()
  #latencies = new Float64Array(1 << 20)
  #onReached: ((round: SinkRound) => void) | undefined

  /** Resets the counters; `onReached` is called once `items` have arrived. */
  arm(items: number, mode: SinkMode, onReached: (round: SinkRound) => void): void {
    this.#mode = mode
    this.#target = items
    this.#items = 0
    this.#requests = 0
    this.#cpu = process.cpuUsage()
    this.#onReached = onReached
  }

  /** One request body, fully received at `arrivedMs` (wallClockMs). */
  receive(body: Uint8Array, msgpack: boolean, arrivedMs: number): void {
    let n: number
    if (this.#mode === 'count') n = msgpack ? msgpackArrayCount(body) : jsonArrayCount(body)
    else {
      const items = (msgpack ? this.#unpackr.unpack(body) : JSON.parse(decoder.decode(body))) as Array<{
        ts: number
      }>
      n = items.length
      if (this.#latencies.length < this.#items + n) {
        const grown = new Float64Array(Math.max(this.#latencies.length * 2, this.#items + n))
        grown.set(this.#latencies.subarray(0, this.#items))
        this.#latencies = grown
      }
      for (let i = 0; i < n; i++) this.#latencies[this.#items + i] = arrivedMs - items[i]!.ts
    }
    this.#items += n
    this.#requests++
    if (this.#onReached && this.#items >= this.#target) {
      const done = this.#onReached
      this.#onReached = undefined
      done(this.round())
    }
  }

  /** What arrived since `arm`. */
  round(): SinkRound {
    const cpu = process.cpuUsage(this.#cpu)
    return {
      items: this.#items,
      requests: this.#requests,
      cpuMs: (cpu.user + cpu.system) / 1000,
      ...(this.#mode === 'latency' ? { latency: this.#latency() } : {}),
    }
  }

  #latency(): SinkLatency {
    const sorted = this.#latencies.slice(0, this.#items).sort()
    return {
      n: sorted.length,
      p50: percentileOfSorted(sorted, 50),
      p99: percentileOfSorted(sorted, 99),
      p999: percentileOfSorted(sorted, 99.9),
      max: sorted.at(-1) ?? Number.NaN,
    }
  }
}

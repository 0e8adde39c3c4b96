import { depthProblem, MAX_ITEM_DEPTH, SCAN_DEPTH, strictProblem } from '../codec/item-check.ts'
import {
  BackpressureError,
  CircuitOpenError,
  EncodeError,
  InvalidArgumentError,
  ItemTooLargeError,
  PipelineDownError,
  QueueClosedError,
  QueueFullError,
} from '../errors.ts'
import type { EnqueueAsyncOptions } from '../queue/types.ts'
import { LaneWriter } from '../ring/lane-writer.ts'
import { ControlSlot, LANE_HEADER_BYTES, QueueState, RejectReason, recordSize } from '../ring/layout.ts'
import type { ProducerHandle, ProducerLimits } from './handle.ts'
import { Pacer } from './pacer.ts'
import { RingPacker } from './ring-packer.ts'

/**
 * The enqueue side of one lane, used by the queue's own thread and by every
 * producer thread (`connectProducer`). Synchronous methods never wait: at the
 * hard limit they apply `fullPolicy` at once. `enqueueAsync` is also paced
 * past the soft limit and waits for room under `block`.
 */
export class Producer {
  readonly #lane: LaneWriter
  readonly #control: Int32Array
  readonly #limits: ProducerLimits
  readonly #packer: RingPacker
  readonly #pacer: Pacer
  readonly #strict: boolean
  /** Encoded items longer than this are scanned for their depth (item-check.ts: SCAN_DEPTH). */
  readonly #scanAbove: number = SCAN_DEPTH ? MAX_ITEM_DEPTH : Number.POSITIVE_INFINITY
  #closed = false

  constructor(handle: ProducerHandle) {
    if (handle?.__vinequeueProducer !== 1) {
      throw new InvalidArgumentError('connectProducer: expected a handle from queue.producerPort()')
    }
    this.#limits = handle.limits
    this.#lane = new LaneWriter(handle.lane, handle.control, handle.limits.hardLimit)
    this.#control = new Int32Array(handle.control)
    this.#packer = new RingPacker(handle.lane)
    this.#pacer = new Pacer(handle.limits, this.#lane.capacity, this.#lane.readPosition())
    this.#strict = handle.limits.strictItems === true
  }

  #checkOpen(): void {
    const state = Atomics.load(this.#control, ControlSlot.STATE)
    if (state <= QueueState.RUNNING && !this.#closed) {
      const reject = Atomics.load(this.#control, ControlSlot.REJECT)
      if (reject !== 0) this.#reject(reject)
      return
    }
    if (state === QueueState.DOWN) {
      throw new QueueClosedError('The queue is down: its pipeline thread died', {
        reason: 'down',
        cause: new PipelineDownError('pipeline thread exited'),
      })
    }
    throw new QueueClosedError(this.#closed ? 'This producer is closed' : 'The queue is stopped', {
      reason: 'stopped',
    })
  }

  /** The pipeline asked producers to refuse items (circuit open or WAL full, policy 'reject'). */
  #reject(reasons: number): never {
    this.#lane.rejected++
    this.#lane.countersChanged()
    if (reasons & RejectReason.CIRCUIT_OPEN) {
      throw new CircuitOpenError(
        "The sender's circuit breaker is open (circuitBreaker.whileOpen 'reject'): the target is failing",
      )
    }
    throw new QueueFullError("The write-ahead log is at wal.maxBytes (wal.fullPolicy 'reject')")
  }

  #encode(item: unknown, index?: number): Uint8Array {
    if (this.#strict) this.#checkStrict(item, index)
    let bytes: Uint8Array
    try {
      bytes = this.#packer.pack(item)
    } catch (cause) {
      throw this.#encodeError(cause, index)
    }
    if (bytes.length > this.#limits.maxItemBytes) this.#tooLarge(bytes.length, index)
    if (bytes.length > this.#scanAbove) this.#checkDepth(bytes, 0, bytes.length, index)
    return bytes
  }

  /**
   * Refuses an item no thread of the queue could decode (too deep for the
   * decoders' stacks). Nothing is in the ring yet: bytes packed in the lane's
   * free tail are not a record until reserved and committed.
   */
  #checkDepth(bytes: Uint8Array, start: number, end: number, index?: number, extra?: number): void {
    const why = depthProblem(bytes, start, end, extra)
    if (why !== undefined) this.#refuse(why, index)
  }

  /** strictItems: refuses an item that would not come back as the same data. */
  #checkStrict(item: unknown, index?: number): void {
    const why = strictProblem(item)
    if (why !== undefined)
      this.#refuse(`${why}; strictItems refuses what would not come back as the same data`, index)
  }

  #refuse(why: string, index?: number): never {
    const where = index === undefined ? '' : ` at index ${index}`
    throw new EncodeError(`Cannot take item${where}: ${why}`)
  }

  #encodeError(cause: unknown, index?: number): EncodeError {
    const where = index === undefined ? '' : ` at index ${index}`
    return new EncodeError(`Cannot encode item${where} with msgpack: ${(cause as Error).message}`, { cause })
  }

  #tooLarge(size: number, index?: number): never {
    const where = index === undefined ? '' : ` at index ${index}`
    throw new ItemTooLargeError(
      `Item${where} is ${size} bytes encoded, over maxItemBytes (${this.#limits.maxItemBytes})`,
      { size, limit: this.#limits.maxItemBytes },
    )
  }

  #full(what: string): never {
    this.#lane.rejected++
    this.#lane.countersChanged()
    throw new QueueFullError(
      `The queue is full (${what}; ring ${this.#lane.capacity} B, hardLimit ${this.#limits.hardLimit}, fullPolicy '${this.#limits.fullPolicy}')`,
    )
  }

  /**
   * Writes one encoded record. Returns false when `dropNewest` dropped it;
   * throws QueueFullError under `block`/`reject`.
   */
  #put(bytes: Uint8Array, raw: boolean): boolean {
    const lane = this.#lane
    let at = lane.reserve(bytes.length, raw)
    if (at < 0) {
      lane.publish()
      at = lane.reserve(bytes.length, raw)
      if (at < 0) {
        switch (this.#limits.fullPolicy) {
          case 'dropNewest':
            lane.droppedNewest++
            lane.countersChanged()
            return false
          case 'dropOldest':
            if (!lane.evictFor(bytes.length)) this.#full('item larger than the free ring')
            at = lane.reserve(bytes.length, raw)
            if (at < 0) this.#full('eviction raced')
            lane.countersChanged()
            break
          default:
            this.#full('lane at hard limit')
        }
      }
    }
    lane.bytes.set(bytes, at)
    lane.committed(1)
    return true
  }

  /**
   * Encodes `item` with msgpack and appends it. Returns true when accepted,
   * false when the `dropNewest` policy dropped it.
   * @throws QueueClosedError, QueueFullError (policy block/reject), ItemTooLargeError, EncodeError
   */
  enqueue(item: unknown): boolean {
    this.#checkOpen()
    if (this.#strict) this.#checkStrict(item)
    let length: number
    try {
      length = this.#packer.packInLane(item, this.#lane)
    } catch (cause) {
      throw this.#encodeError(cause)
    }
    if (length < 0) {
      const bytes = this.#packer.outside
      if (bytes.length > this.#limits.maxItemBytes) this.#tooLarge(bytes.length)
      if (bytes.length > this.#scanAbove) this.#checkDepth(bytes, 0, bytes.length)
      return this.#put(bytes, false)
    }
    if (length > this.#limits.maxItemBytes) this.#tooLarge(length)
    const lane = this.#lane
    const payloadAt = LANE_HEADER_BYTES + lane.writeOffset + 4
    if (length > this.#scanAbove) this.#checkDepth(lane.bytes, payloadAt, payloadAt + length)
    const at = lane.reserve(length, false)
    if (at < 0) return this.#put(lane.bytes.slice(payloadAt, payloadAt + length), false)
    lane.committed(1)
    return true
  }

  /**
   * Appends already-encoded bytes as one item (no msgpack). Senders see them
   * as `raw` payloads; `batch.items()` returns them as Uint8Array.
   */
  enqueueRaw(bytes: Uint8Array): boolean {
    this.#checkOpen()
    if (!(bytes instanceof Uint8Array))
      throw new InvalidArgumentError('enqueueRaw: bytes must be a Uint8Array')
    if (bytes.length > this.#limits.maxItemBytes) this.#tooLarge(bytes.length)
    return this.#put(bytes, true)
  }

  /**
   * Appends every item or none: an encode error, an oversized item or a full
   * ring (block/reject) throws and leaves the queue as it was; `dropNewest`
   * drops the whole batch (returns false).
   */
  enqueueBatch(items: readonly unknown[]): boolean {
    this.#checkOpen()
    if (!Array.isArray(items)) throw new InvalidArgumentError('enqueueBatch: items must be an array')
    if (items.length === 0) return true
    if (this.#limits.fullPolicy === 'dropOldest') return this.#enqueueBatchEvicting(items)
    const lane = this.#lane
    const start = lane.beginGroup()
    let kept = false
    try {
      const max = this.#limits.maxGroupItems
      for (let i = 0; i < items.length; i += max) {
        const chunk = i === 0 && items.length <= max ? items : items.slice(i, i + max)
        if (!this.#writeGroup(chunk, i)) {
          if (this.#limits.fullPolicy === 'dropNewest') {
            lane.droppedNewest += items.length
            return false
          }
          this.#full(`batch of ${items.length} does not fit`)
        }
      }
      kept = true
      return true
    } finally {
      lane.endGroup(start, kept, items.length)
      if (!kept) lane.countersChanged()
    }
  }

  /**
   * Writes `chunk` (items `offset`…) as one group record — one msgpack array,
   * packed in one call — or item by item when the array would be too large
   * for a batch. Returns false when the lane has no room.
   */
  #writeGroup(chunk: readonly unknown[], offset: number): boolean {
    if (chunk.length === 1) return this.#writeEach(chunk, offset)
    if (this.#strict) for (let j = 0; j < chunk.length; j++) this.#checkStrict(chunk[j], offset + j)
    let array: Uint8Array
    try {
      array = this.#packer.pack(chunk)
    } catch (cause) {
      // Find the culprit's index; one of these throws.
      for (let j = 0; j < chunk.length; j++) this.#encode(chunk[j], offset + j)
      throw new EncodeError(`Cannot encode the batch with msgpack: ${(cause as Error).message}`, { cause })
    }
    // The array is one level around the items.
    if (array.length > this.#scanAbove + 1 && depthProblem(array, 0, array.length, 1) !== undefined) {
      for (let j = 0; j < chunk.length; j++) this.#encode(chunk[j], offset + j)
    }
    // The payload: a u32 item count, then the array.
    const payload = 4 + array.length
    if (payload > this.#limits.maxGroupBytes) return this.#writeEach(chunk, offset)
    const lane = this.#lane
    const at = lane.reserve(payload, false, true)
    if (at < 0) return false
    lane.setGroupCount(at, chunk.length)
    lane.bytes.set(array, at + 4)
    return true
  }

  #writeEach(chunk: readonly unknown[], offset: number): boolean {
    const lane = this.#lane
    for (let j = 0; j < chunk.length; j++) {
      const bytes = this.#encode(chunk[j], offset + j)
      const at = lane.reserve(bytes.length, false)
      if (at < 0) return false
      lane.bytes.set(bytes, at)
    }
    return true
  }

  /**
   * dropOldest evicts records, which cannot be undone: encode and check every
   * item first so a bad item late in the batch never costs evicted data.
   */
  #enqueueBatchEvicting(items: readonly unknown[]): boolean {
    const encoded: Uint8Array[] = new Array(items.length)
    let total = 0
    for (let i = 0; i < items.length; i++) {
      const bytes = this.#encode(items[i], i)
      // A copy: the packer's buffer is reused by the next pack (and Buffer#slice is a view).
      encoded[i] = new Uint8Array(bytes)
      total += recordSize(bytes.length)
    }
    if (total * 2 > this.#lane.capacity * this.#limits.hardLimit)
      this.#full(`batch of ${total} B exceeds the ring`)
    const lane = this.#lane
    const start = lane.beginGroup()
    let kept = false
    try {
      for (const bytes of encoded) {
        let at = lane.reserve(bytes.length, false)
        if (at < 0) {
          if (!lane.evictFor(bytes.length)) this.#full('batch does not fit')
          at = lane.reserve(bytes.length, false)
          if (at < 0) this.#full('eviction raced')
        }
        lane.bytes.set(bytes, at)
      }
      kept = true
      return true
    } finally {
      lane.endGroup(start, kept, items.length)
      lane.countersChanged()
    }
  }

  /**
   * Like `enqueue`, but waits instead of failing: past the soft limit it is
   * paced to the rate the lane drains (pacer.ts), and under `block` it waits
   * for room at the hard limit — until this producer has been held back
   * `maxBlockMs` in all (not per call), then rejects with BackpressureError.
   */
  async enqueueAsync(item: unknown, options?: EnqueueAsyncOptions): Promise<boolean> {
    this.#checkOpen()
    // A copy, held while this call waits: the packer's buffer is reused by the
    // next pack (and Buffer#slice would only be a view of it).
    const bytes = new Uint8Array(this.#encode(item))
    return this.#putAsync(bytes, false, options)
  }

  /** `enqueueRaw` that waits for room like `enqueueAsync`. */
  async enqueueRawAsync(bytes: Uint8Array, options?: EnqueueAsyncOptions): Promise<boolean> {
    this.#checkOpen()
    if (!(bytes instanceof Uint8Array))
      throw new InvalidArgumentError('enqueueRawAsync: bytes must be a Uint8Array')
    if (bytes.length > this.#limits.maxItemBytes) this.#tooLarge(bytes.length)
    return this.#putAsync(bytes, true, options)
  }

  async #putAsync(bytes: Uint8Array, raw: boolean, options?: EnqueueAsyncOptions): Promise<boolean> {
    const lane = this.#lane
    const pacer = this.#pacer
    const maxBlockMs = options?.maxBlockMs ?? this.#limits.maxBlockMs
    let now = performance.now()
    pacer.observe(now, lane.readPosition(), lane.evictedBytes)
    const delay = pacer.admit(now, lane.fill(), recordSize(bytes.length), maxBlockMs)
    lane.setBackoff(pacer.backoffUs)
    if (delay > 0) {
      lane.paced = pacer.paced
      lane.countersChanged()
      await sleep(delay)
    }
    if (this.#limits.fullPolicy !== 'block') {
      this.#checkOpen()
      return this.#put(bytes, raw)
    }
    for (;;) {
      this.#checkOpen()
      options?.signal?.throwIfAborted()
      let at = lane.reserve(bytes.length, raw)
      if (at < 0) {
        lane.publish()
        at = lane.reserve(bytes.length, raw)
      }
      if (at >= 0) {
        lane.bytes.set(bytes, at)
        lane.committed(1)
        return true
      }
      // At the hard limit: the wait counts toward the producer's held-back
      // total (pacer.ts), so maxBlockMs bounds the whole episode, not this call.
      now = performance.now()
      pacer.observe(now, lane.readPosition(), lane.evictedBytes)
      pacer.hold(now)
      const held = pacer.heldMs(now)
      if (held >= maxBlockMs) {
        lane.rejected++
        lane.countersChanged()
        throw new BackpressureError(
          `No room in the queue: this producer has been held back ${Math.round(held)} ms (maxBlockMs ${maxBlockMs})`,
          { waitedMs: held },
        )
      }
      lane.setBackoff(this.#limits.maxBackoffMs * 1000)
      const expected = lane.armWait()
      // Re-check after arming: the pipeline may have freed room in between.
      if (lane.hasRoom(bytes.length)) continue
      // Wake at least every 100 ms to notice stop() and aborts.
      await lane.waitForRoom(expected, Math.min(100, maxBlockMs - held))
    }
  }

  /** Makes everything written so far visible to the pipeline now. */
  publish(): void {
    this.#lane.publish()
  }

  /** Fill ratio of this producer's lane (0–1). */
  fill(): number {
    return this.#lane.fill()
  }

  /** Closes this producer; the pipeline drains its lane. Idempotent. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#lane.close()
  }
}

/** A ref'd timer on purpose: the caller awaits it, the thread must not exit under it. */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/**
 * Connects the current thread to a queue through a handle from
 * `queue.producerPort()` (posted to this worker). The producer gets a lane of
 * its own: no contention with other producer threads.
 */
export function connectProducer(handle: ProducerHandle): Producer {
  return new Producer(handle)
}

import type { Packr } from 'msgpackr'
import { createPackr, packModes } from '../codec/codec.ts'
import type { LaneWriter } from '../ring/lane-writer.ts'
import { LANE_HEADER_BYTES } from '../ring/layout.ts'

/** msgpackr allocates a buffer of its own when fewer bytes than this remain in its target. */
const MIN_TAIL_BYTES = 4096

/**
 * What msgpackr is left pointing at between packs: a buffer nothing is ever
 * written to, its position at its end, so the next pack by anyone else on
 * this thread starts a buffer of msgpackr's own (8 KiB, its default size).
 */
const PARKED_BYTES = 8192
const parked: Buffer = Buffer.alloc(PARKED_BYTES)

/**
 * msgpackr, packing straight into the lane when it safely can.
 *
 * Packing into msgpackr's own buffer and copying into the lane costs a
 * subarray allocation and a copy per item. When the lane's tail — from the
 * write position to the end of the data area — is all free, msgpackr is
 * pointed at the lane itself (`useBuffer` + `position`) and writes the
 * payload where the record goes, faster than `pack` alone, let alone pack +
 * copy (note `ring_packer.in_place` in packages/bench/README.md). The tail being free is what
 * makes this safe: msgpackr only stops at the end of its target, so it must
 * never be pointed at a region followed by unconsumed records (a wrapped
 * lane); an item too large for the tail makes msgpackr move to a buffer of
 * its own, which `packInLane` detects.
 *
 * msgpackr aligns where it starts to 8 bytes; records are 4-aligned, so the
 * record header goes in bytes it is told to reserve.
 *
 * msgpackr's target buffer and position are one per thread, shared by every
 * Packr on it — another queue's packer, and any other code on the thread
 * using the same msgpackr build (codec.ts). So every pack here points msgpackr at the
 * buffer it is for, and leaves it parked on a buffer nothing writes to
 * (`park`): another packer never writes into this lane (where it would
 * overwrite records the pipeline has not read), and this one never writes
 * over bytes another packer handed out.
 *
 * Only single items are packed in place. A group (an enqueueBatch chunk,
 * ~100 KB) is slightly faster packed in msgpackr's cache-hot buffer and
 * copied in one `set` (same note): msgpackr's small stores into cold lane memory cost more than one large copy.
 */
export class RingPacker {
  readonly #packr: Packr = createPackr()
  readonly #modes: number = packModes()
  /** The lane's data area as a Buffer (msgpackr writes strings with Buffer#utf8Write). */
  readonly #laneView: Buffer
  readonly #own: Buffer = Buffer.allocUnsafeSlow(64 * 1024)
  /** Where the last `packInLane` call left its bytes when it returned -1. */
  outside: Uint8Array = this.#own.subarray(0, 0)

  constructor(lane: SharedArrayBuffer) {
    this.#laneView = Buffer.from(lane, LANE_HEADER_BYTES)
  }

  /**
   * Packs `value` so that its payload starts right after the record header
   * at the lane's write position. Returns the payload length when it is in
   * the lane; -1 when the lane's tail could not take it (then the bytes are
   * in `outside`, a view of msgpackr's buffer valid until the next pack).
   * @throws whatever msgpackr throws for an item it cannot encode.
   */
  packInLane(value: unknown, lane: LaneWriter): number {
    const off = lane.freeTailOffset(MIN_TAIL_BYTES)
    if (off < 0) {
      this.outside = this.pack(value)
      return -1
    }
    // msgpackr starts at the next multiple of 8, then skips the reserved bytes.
    const start = (off & 7) === 0 ? off : off + 4
    const skip = off + 4 - start
    this.#packr.useBuffer(this.#laneView)
    this.#packr.position = start
    let out: Buffer & { start: number; end: number }
    try {
      out = this.#packr.pack(value, this.#modes | skip) as Buffer & { start: number; end: number }
    } finally {
      this.#park()
    }
    if (out === this.#laneView && out.start === start) return out.end - (off + 4)
    // It outgrew the tail: msgpackr moved to a buffer of its own (not written again).
    this.outside = out.subarray(out.start + skip, out.end)
    return -1
  }

  /** Packs into a buffer of this packer's (for bytes that must outlive the call): valid until the next pack. */
  pack(value: unknown): Uint8Array {
    this.#packr.useBuffer(this.#own)
    try {
      return this.#packr.pack(value)
    } finally {
      this.#park()
    }
  }

  /** Leaves msgpackr on `parked`, full: see the class's comment. */
  #park(): void {
    this.#packr.useBuffer(parked)
    this.#packr.position = PARKED_BYTES
  }
}

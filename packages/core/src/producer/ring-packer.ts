import type { Packr } from 'msgpackr'
import { createPackr, packModes } from '../codec/codec.ts'
import type { LaneWriter } from '../ring/lane-writer.ts'
import { LANE_HEADER_BYTES } from '../ring/layout.ts'

/** msgpackr allocates a buffer of its own when fewer bytes than this remain in its target. */
const MIN_TAIL_BYTES = 4096

/**
 * The next positions no pack reaches (far past the end of any buffer
 * msgpackr writes): each packer takes two, see RingPacker.
 */
let nextMark = 0x4000_0000

/** The largest buffer of msgpackr's a packer keeps as its own (see `pack`). */
const OWN_MAX_BYTES = 1 << 20

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
 * using the same msgpackr build (codec.ts). So this packer never leaves
 * msgpackr free to write into its buffers: after each pack into the lane
 * (or into its own buffer) it sets msgpackr's position to a mark of its own,
 * far past the buffer's end. Another pack on the thread then starts a buffer
 * of its own (msgpackr allocates one the size of the current target) instead
 * of writing over records the pipeline has not read — or over bytes this
 * packer handed out. Finding its mark still set at the next pack, this
 * packer knows the target is still its buffer and only sets the position.
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
  #own: Buffer = Buffer.allocUnsafeSlow(64 * 1024)
  /** msgpackr's position while its target is this lane, between packs. */
  readonly #laneMark: number = (nextMark += 8)
  /** msgpackr's position while its target is `#own`, between packs. */
  readonly #ownMark: number = (nextMark += 8)
  /** Where the last `packInLane` call left its bytes when it returned -1. */
  outside: Uint8Array = this.#own.subarray(0, 0)

  constructor(lane: SharedArrayBuffer) {
    this.#laneView = Buffer.from(lane, LANE_HEADER_BYTES)
  }

  /**
   * Packs `value` so that its payload starts right after the record header
   * at the lane's write position. Returns the payload length when it is in
   * the lane; -1 when the lane's tail could not take it (then the bytes are
   * in `outside`, valid until the next pack).
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
    const packr = this.#packr
    if (packr.position !== this.#laneMark) packr.useBuffer(this.#laneView)
    packr.position = start
    let out: Buffer & { start: number; end: number }
    try {
      out = packr.pack(value, this.#modes | skip) as Buffer & { start: number; end: number }
    } catch (err) {
      this.#park(this.#laneView, this.#laneMark)
      throw err
    }
    if (out === this.#laneView && out.start === start) {
      packr.position = this.#laneMark
      return out.end - (off + 4)
    }
    // It outgrew the tail: msgpackr moved to a buffer of its own, and stays
    // there (the next pack into the lane points it back).
    this.outside = out.subarray(out.start + skip, out.end)
    return -1
  }

  /** Packs into this packer's buffer (for bytes that must outlive the call): valid until the next pack. */
  pack(value: unknown): Uint8Array {
    const packr = this.#packr
    if (packr.position === this.#ownMark) packr.position = 0
    else packr.useBuffer(this.#own)
    let out: Uint8Array
    try {
      out = packr.pack(value)
    } catch (err) {
      this.#park(this.#own, this.#ownMark)
      throw err
    }
    if (out.buffer !== this.#own.buffer) {
      // Larger than `#own`: msgpackr moved to a larger buffer of its own. Up to
      // OWN_MAX_BYTES it becomes this packer's (packing an enqueueBatch chunk
      // would otherwise start small and grow every time); past that msgpackr
      // keeps it.
      if (out.buffer.byteLength > OWN_MAX_BYTES) return out
      this.#own = Buffer.from(out.buffer as ArrayBuffer)
      packr.useBuffer(this.#own)
    }
    packr.position = this.#ownMark
    return out
  }

  /** After a pack that threw (msgpackr may have moved elsewhere): its target `buffer` again, left at `mark`. */
  #park(buffer: Buffer, mark: number): void {
    this.#packr.useBuffer(buffer)
    this.#packr.position = mark
  }
}

import type { LaneReader } from '../ring/lane-reader.ts'

/** What a flush request asks of the pipeline, answered by `FlushRequests.service`. */
export interface FlushContext {
  /** Whether `lane` is still drained (a finished lane that was retired holds nothing more). */
  isLive(lane: LaneReader): boolean
  /** Cuts the open batch; false when it must stay open (the WAL is full or cannot be written now). */
  cut(): boolean
  /** Id of the last batch cut. */
  lastCutId(): number
  /** With a WAL: the log's next sequence number (what a drain must see settled); else undefined. */
  walNextSeq(): number | undefined
  /**
   * flush: every batch up to `target` handed to a sender or durable in the
   * WAL (may first move waiting batches to the WAL).
   */
  handedOver(target: number): boolean
  /** drain: every batch up to `target` settled, and the WAL settled up to `walTarget`. */
  settled(target: number, walTarget: number | undefined): boolean
  /** Request `id` is answered. */
  done(id: number): void
}

interface FlushRequest {
  readonly id: number
  readonly drain: boolean
  /** Lane write positions when the request arrived. */
  readonly marks: Map<LaneReader, number>
  /** Last batch id holding items from before the request, once known. */
  target?: number
  /** drain with a WAL: the log's next sequence number when the target was set. */
  walTarget?: number
}

/**
 * Outstanding flush() and drain() calls. A request first waits until every
 * lane has been drained past where its writer stood when the request came
 * (so the items enqueued before it are in batches), cuts the open batch and
 * notes the last batch id as its target; then it waits for those batches:
 * handed over (flush) or settled (drain). Requests are answered in any
 * order, each once.
 */
export class FlushRequests {
  readonly #requests: FlushRequest[] = []

  get length(): number {
    return this.#requests.length
  }

  /** A request arrives; `lanes` are the lanes live now. */
  add(id: number, drain: boolean, lanes: readonly LaneReader[]): void {
    this.#requests.push({ id, drain, marks: new Map(lanes.map((lane) => [lane, lane.writePosition()])) })
  }

  /** Whether a request still waits for `lane` to be drained past its mark (the lane must not be retired yet). */
  holds(lane: LaneReader): boolean {
    return this.#requests.some((r) => r.marks.has(lane))
  }

  /** Whether a flush (not a drain) waits. */
  get flushWaiting(): boolean {
    return this.#requests.some((r) => !r.drain)
  }

  /** Answers every request that can be answered now. */
  service(ctx: FlushContext): void {
    for (let i = 0; i < this.#requests.length; i++) {
      const req = this.#requests[i]!
      if (req.target === undefined) {
        let reached = true
        for (const [lane, mark] of req.marks) {
          if (ctx.isLive(lane) && !lane.reached(mark)) {
            reached = false
            break
          }
        }
        if (!reached || !ctx.cut()) continue
        req.target = ctx.lastCutId()
        if (req.drain) req.walTarget = ctx.walNextSeq()
      }
      if (req.drain ? !ctx.settled(req.target, req.walTarget) : !ctx.handedOver(req.target)) continue
      this.#requests.splice(i--, 1)
      ctx.done(req.id)
    }
  }
}

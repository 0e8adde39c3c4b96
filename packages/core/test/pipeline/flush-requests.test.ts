import { describe, expect, it } from 'vitest'
import { type FlushContext, FlushRequests } from '../../src/pipeline/flush-requests.ts'
import { LaneReader } from '../../src/ring/lane-reader.ts'
import { LaneWriter } from '../../src/ring/lane-writer.ts'
import { createControlBuffer, createLaneBuffer } from '../../src/ring/layout.ts'

function lane() {
  const sab = createLaneBuffer(4096)
  const writer = new LaneWriter(sab, createControlBuffer(), 1)
  const reader = new LaneReader(sab)
  const write = (): void => {
    const at = writer.reserve(3, true)
    writer.bytes.set([1, 2, 3], at)
    writer.committed(1)
    writer.publish()
  }
  return { reader, write }
}

/** A pipeline stand-in whose answers the test sets. */
function context(over: Partial<FlushContext> = {}) {
  const done: number[] = []
  const state = {
    cuts: 0,
    lastCut: 0,
    handedOver: false,
    settled: false,
    walNextSeq: undefined as number | undefined,
  }
  const targets: Array<{ kind: string; target: number; walTarget?: number }> = []
  const ctx: FlushContext = {
    isLive: () => true,
    cut: () => {
      state.cuts++
      return true
    },
    lastCutId: () => state.lastCut,
    walNextSeq: () => state.walNextSeq,
    handedOver: (target) => {
      targets.push({ kind: 'flush', target })
      return state.handedOver
    },
    settled: (target, walTarget) => {
      targets.push({ kind: 'drain', target, walTarget })
      return state.settled
    },
    done: (id) => done.push(id),
    ...over,
  }
  return { ctx, done, state, targets }
}

describe('FlushRequests', () => {
  it('waits until every lane is drained past its mark, cuts, then waits for its batches', () => {
    const l = lane()
    l.write()
    const requests = new FlushRequests()
    const { ctx, done, state, targets } = context()
    requests.add(1, false, [l.reader])
    expect(requests.holds(l.reader)).toBe(true)
    expect(requests.flushWaiting).toBe(true)
    l.write() // (after the request: not waited for)
    requests.service(ctx)
    expect(state.cuts).toBe(0)
    l.reader.drainAll()
    state.lastCut = 5
    requests.service(ctx)
    expect(state.cuts).toBe(1)
    expect(targets).toEqual([{ kind: 'flush', target: 5 }])
    expect(done).toEqual([])
    state.lastCut = 6 // (later cuts do not move the target)
    state.handedOver = true
    requests.service(ctx)
    expect(state.cuts).toBe(1)
    expect(targets.at(-1)).toEqual({ kind: 'flush', target: 5 })
    expect(done).toEqual([1])
    expect(requests.length).toBe(0)
    expect(requests.holds(l.reader)).toBe(false)
  })

  it('a retired lane does not hold a request back', () => {
    const l = lane()
    l.write()
    const requests = new FlushRequests()
    const { ctx, done, state } = context({ isLive: () => false })
    state.handedOver = true
    requests.add(1, false, [l.reader])
    requests.service(ctx)
    expect(done).toEqual([1])
  })

  it('a refused cut leaves the request waiting for its target', () => {
    const requests = new FlushRequests()
    let refuse = true
    const { ctx, done, state, targets } = context({ cut: () => !refuse })
    state.handedOver = true
    requests.add(1, false, [])
    requests.service(ctx)
    expect(targets).toEqual([])
    refuse = false
    requests.service(ctx)
    expect(done).toEqual([1])
  })

  it('a drain waits for settlement and the WAL position noted with its target; answers in any order', () => {
    const requests = new FlushRequests()
    const { ctx, done, state, targets } = context()
    state.walNextSeq = 900
    state.lastCut = 3
    requests.add(1, true, [])
    requests.add(2, false, [])
    expect(requests.flushWaiting).toBe(true)
    state.handedOver = true
    requests.service(ctx)
    expect(targets).toEqual([
      { kind: 'drain', target: 3, walTarget: 900 },
      { kind: 'flush', target: 3 },
    ])
    expect(done).toEqual([2])
    expect(requests.flushWaiting).toBe(false)
    state.settled = true
    requests.service(ctx)
    expect(done).toEqual([2, 1])
  })
})

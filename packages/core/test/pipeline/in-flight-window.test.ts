import { describe, expect, it } from 'vitest'
import { InFlightWindow } from '../../src/pipeline/in-flight-window.ts'

interface Entry {
  id: number
  walSeq?: number | undefined
  retrying: boolean
}

function setup(max = 2) {
  const sent: number[] = []
  const window = new InFlightWindow<Entry>(max, undefined, (e) => sent.push(e.id))
  const entry = (id: number, walSeq?: number): Entry => ({ id, walSeq, retrying: false })
  return { window, sent, entry }
}

describe('InFlightWindow', () => {
  it('sends waiting batches in order, never more than the limit in flight', () => {
    const { window, sent, entry } = setup(2)
    const [a, b, c] = [entry(1), entry(2), entry(3)]
    for (const e of [a, b, c]) {
      window.add(e)
      window.enqueue(e)
    }
    expect(window.hasRoom).toBe(false)
    window.dispatch()
    expect(sent).toEqual([1, 2])
    expect(window.inFlight).toBe(2)
    expect(window.size).toBe(3)
    window.settle(b)
    expect(sent).toEqual([1, 2]) // (a freed slot is used on the next dispatch)
    window.dispatch()
    expect(sent).toEqual([1, 2, 3])
    expect(window.size).toBe(2)
    expect([...window.unsettled()].map((e) => e.id)).toEqual([1, 3])
  })

  it('an added batch counts as unsettled before it is queued (waiting for the WAL commit)', () => {
    const { window, sent, entry } = setup()
    window.add(entry(1, 10))
    window.dispatch()
    expect(sent).toEqual([])
    expect(window.size).toBe(1)
    expect(window.hasUnsettledUpTo(1)).toBe(true)
    expect(window.hasUnsettledUpTo(0)).toBe(false)
    expect(window.hasRoom).toBe(true)
  })

  it('the lowest unsettled WAL sequence number skips batches not in the WAL', () => {
    const { window, entry } = setup(8)
    expect(window.lowestWalSeq()).toBeUndefined()
    const logged = entry(2, 40)
    window.add(entry(1))
    window.add(logged)
    window.add(entry(3, 55))
    expect(window.lowestWalSeq()).toBe(40)
    logged.walSeq = undefined // (dropped with its segment: no longer holds the watermark)
    expect(window.lowestWalSeq()).toBe(55)
    window.enqueue(logged)
    window.dispatch()
    window.settle(logged)
    window.add(entry(4, 0))
    expect(window.lowestWalSeq()).toBe(0)
  })

  it('takeWaiting removes the chosen waiting batches until one is refused', () => {
    const { window, sent, entry } = setup(1)
    const all = [entry(1), entry(2), entry(3, 7), entry(4), entry(5)]
    for (const e of all) {
      window.add(e)
      window.enqueue(e)
    }
    window.dispatch() // (1 in flight)
    const taken: number[] = []
    const done = window.takeWaiting(
      (e) => e.id <= 4 && e.walSeq === undefined,
      (e) => {
        if (e.id === 4) return false
        taken.push(e.id)
        return true
      },
    )
    expect(done).toBe(false)
    expect(taken).toEqual([2])
    expect([...window.unsettled()].map((e) => e.id)).toEqual([1, 3, 4, 5])
    expect(window.everyWaiting((e) => e.id >= 3)).toBe(true)
    window.settle(all[0]!)
    window.dispatch()
    expect(sent).toEqual([1, 3])
  })

  it('reports a retrying batch', () => {
    const { window, entry } = setup()
    const e = entry(1)
    window.add(e)
    expect(window.anyRetrying()).toBe(false)
    e.retrying = true
    expect(window.anyRetrying()).toBe(true)
  })

  it('a batch the log holds keeps its slot after it settled, until the acknowledgement passes it', () => {
    const { window, sent, entry } = setup(2)
    const [a, b, c] = [entry(1, 0), entry(2, 10), entry(3, 20)]
    for (const e of [a, b, c]) {
      window.add(e)
      window.enqueue(e)
    }
    window.dispatch()
    expect(sent).toEqual([1, 2])
    window.settle(a, true)
    window.settle(b, true)
    expect({ size: window.size, held: window.held, inFlight: window.inFlight }).toEqual({
      size: 1,
      held: 2,
      inFlight: 2,
    })
    window.dispatch()
    expect(sent).toEqual([1, 2]) // (delivered, not acknowledged yet: still in flight for a crash)
    expect(window.release(10)).toBe(1) // a's items are below 10; b's are not
    window.dispatch()
    expect(sent).toEqual([1, 2, 3])
    expect(window.release(30)).toBe(1)
    expect(window.held).toBe(0)
    // A batch the log does not hold gives its slot back at once.
    const d = entry(4)
    window.add(d)
    window.enqueue(d)
    window.dispatch()
    expect(sent).toEqual([1, 2, 3, 4])
    window.settle(d, true)
    expect({ held: window.held, inFlight: window.inFlight }).toEqual({ held: 0, inFlight: 1 })
  })

  it('a held slot never keeps a batch logged before it waiting (its acknowledgement waits for that batch)', () => {
    const { window, sent, entry } = setup(2)
    const [late1, late2, early] = [entry(1, 100), entry(2, 110), entry(3, 50)]
    for (const e of [late1, late2]) {
      window.add(e)
      window.enqueue(e)
    }
    window.dispatch()
    window.settle(late1, true)
    window.settle(late2, true)
    // Queued out of log order: the watermark stops at 50 until `early` settles.
    window.add(early)
    window.enqueue(early)
    window.dispatch()
    expect(sent).toEqual([1, 2, 3])
    window.settle(early, true)
    expect(window.release(120)).toBe(3)
    expect(window.inFlight).toBe(0)
  })
})

import { describe, expect, it } from 'vitest'
import { checksum, makeEvent } from '../../src/events.ts'
import { Ledger } from '../../src/sink/ledger.ts'

const line = (id: number): string => JSON.stringify(makeEvent(id))
const body = (...lines: string[]): Buffer => Buffer.from(`${lines.join('\n')}\n`)

describe('Ledger', () => {
  it('stores each line by id with the checksum of its bytes', () => {
    const ledger = new Ledger(4)
    ledger.recordBody(body(line(0), line(3)))
    const { copies, sums, received, unique } = ledger.snapshot()
    expect([...copies]).toEqual([1, 0, 0, 1])
    expect(sums[3]).toBe(checksum(line(3)))
    expect(sums[3]).toBe(checksum(Buffer.from(line(3))))
    expect({ received, unique }).toEqual({ received: 2, unique: 2 })
  })

  it('counts duplicates, and duplicates whose content differs', () => {
    const ledger = new Ledger(2)
    ledger.recordBody(body(line(1)))
    ledger.recordBody(body(line(1), line(1).replace('"web"', '"wep"')))
    const { copies, received, unique, conflicting } = ledger.snapshot()
    expect(copies[1]).toBe(3)
    expect({ received, unique, conflicting }).toEqual({ received: 3, unique: 1, conflicting: 1 })
  })

  it('counts lines that are not an event of the run', () => {
    const ledger = new Ledger(2)
    ledger.recordBody(body('{"id":2,"x":1}', '{"id":-1,"x":1}', '{"x":1,"id":0}', 'not json', '{"id":1}'))
    const { received, invalid } = ledger.snapshot()
    expect({ received, invalid }).toEqual({ received: 0, invalid: 5 })
  })

  it('handles a body without a final newline', () => {
    const ledger = new Ledger(1)
    ledger.recordBody(Buffer.from(line(0)))
    expect(ledger.snapshot().unique).toBe(1)
  })
})

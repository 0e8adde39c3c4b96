import { describe, expect, it } from 'vitest'
import { createMetricsBuffer, MetricSlot } from '../../src/metrics/layout.ts'
import { MetricsWriter } from '../../src/metrics/writer.ts'
import { type Flight, newFlight } from '../../src/pipeline/flight.ts'
import { HostTransport } from '../../src/pipeline/host-transport.ts'
import type { PipelineToHost } from '../../src/pipeline/protocol.ts'
import { Slab } from '../../src/pipeline/slab-pool.ts'
import { fillRaw } from './slab-kit.ts'

function setup() {
  const posted: PipelineToHost[] = []
  const results: Array<{ flight: Flight; startedAt: number; failed: unknown; error: unknown }> = []
  const metrics = new MetricsWriter(createMetricsBuffer())
  const transport = new HostTransport(
    (msg) => posted.push(msg),
    metrics,
    (flight, startedAt, failed, error) => results.push({ flight, startedAt, failed, error }),
  )
  const slab = fillRaw(new Slab(1024), ['a', 'b'])
  const flight = newFlight(7, slab)
  flight.attempt = 1
  return { posted, results, metrics, transport, slab, flight }
}

describe('HostTransport', () => {
  it('posts the shared slab to the host and reports its answer once', async () => {
    const { posted, results, transport, slab, flight } = setup()
    transport.send(flight, 123)
    expect(posted).toEqual([
      {
        __vq: 1,
        type: 'send',
        batchId: 7, // the cut id, which the answer names
        id: -7, // batch.id: not in a log, so minus the cut id
        key: flight.batchKey,
        attempt: 1,
        slab: slab.sab,
        count: 2,
        byteLength: slab.bytes,
      },
    ])
    const failed = [{ index: 1, reason: 'busy' }]
    transport.result(7, 1, failed)
    transport.result(7, 1) // (a second answer for the same attempt is ignored)
    expect(results).toEqual([{ flight, startedAt: 123, failed, error: undefined }])
  })

  it('ignores an answer for another attempt or an unknown batch', () => {
    const { results, transport, flight } = setup()
    transport.send(flight, 0)
    transport.result(8, 1)
    transport.result(7, 2)
    expect(results).toEqual([])
    transport.result(7, 1, undefined, { name: 'Error', message: 'down' })
    expect(results).toHaveLength(1)
    expect(results[0]!.error).toEqual({ name: 'Error', message: 'down' })
  })

  it('an abandoned send taints the slab (never reused) and counts as a timeout', () => {
    const { results, metrics, transport, flight } = setup()
    transport.send(flight, 0)
    transport.result(7, 1, undefined, { name: 'SendTimeoutError', message: 'late' }, true)
    expect(flight.slab.tainted).toBe(true)
    expect(metrics.get(MetricSlot.TIMEOUTS)).toBe(1)
    expect(results).toHaveLength(1)
  })

  it('after close, pending answers are dropped', async () => {
    const { results, transport, flight } = setup()
    transport.send(flight, 0)
    expect(await transport.close()).toEqual([])
    transport.result(7, 1)
    expect(results).toEqual([])
  })
})

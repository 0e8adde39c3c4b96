/**
 * pool-topology.ts, two pools — the processor half: decode and encode for
 * the target, hand the body on as a transferred ArrayBuffer.
 */
import { Batch } from '@vinequeue/core'
import { move } from 'piscina'
import type { TopologyTask } from './task.ts'

export default function run(task: TopologyTask): unknown {
  const batch = new Batch(new Uint8Array(task.slab, 0, task.byteLength), task.count)
  const body = new TextEncoder().encode(
    `${batch
      .items()
      .map((item) => JSON.stringify(item))
      .join('\n')}\n`,
  )
  return move(body.buffer as ArrayBuffer)
}

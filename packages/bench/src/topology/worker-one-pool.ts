/**
 * pool-topology.ts, one pool: a task does the whole batch job — decode,
 * encode for the target (NDJSON), then the target's I/O wait.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { Batch } from '@vinequeue/core'
import type { TopologyTask } from './task.ts'

export default async function run(task: TopologyTask): Promise<number> {
  const batch = new Batch(new Uint8Array(task.slab, 0, task.byteLength), task.count)
  const body = Buffer.from(
    `${batch
      .items()
      .map((item) => JSON.stringify(item))
      .join('\n')}\n`,
  )
  await sleep(task.ioMs)
  return body.byteLength
}

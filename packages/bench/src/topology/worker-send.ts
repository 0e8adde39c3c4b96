/** pool-topology.ts, two pools — the sender half: the target's I/O wait for a ready body. */
import { setTimeout as sleep } from 'node:timers/promises'

export default async function run(task: { body: ArrayBuffer; ioMs: number }): Promise<number> {
  await sleep(task.ioMs)
  return task.body.byteLength
}

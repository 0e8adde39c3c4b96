/**
 * A producer's wake-up must never overwrite ASLEEP_FOR_ACKS. The producer
 * checks the doorbell, then sets it AWAKE; in between, the pipeline may have
 * woken, run a pass and gone back to sleep waiting for acks. When a plain
 * exchange wrote AWAKE over that, the pipeline's next kick (an ack) saw AWAKE
 * and skipped its notify: the pipeline slept for good with every slab free and
 * the lanes full, and producers failed after maxBlockMs.
 *
 * Here a real producer thread publishes in a loop while this thread plays the
 * pipeline's doorbell: ASLEEP_WAKE_ME, then ASLEEP_FOR_ACKS, then back. Finding
 * AWAKE where ASLEEP_FOR_ACKS was left is the overwrite.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { Worker } from 'node:worker_threads'
import { expect, it } from 'vitest'
import { ControlSlot, createControlBuffer, createLaneBuffer, Doorbell } from '../../src/ring/layout.ts'

const PUBLISHER = new URL('../fixtures/doorbell-publisher.mjs', import.meta.url)
/** Long enough for the old code to show the overwrite many times over on 2 busy cores. */
const PLAY_MS = 3000

function spin(n: number): number {
  let x = 0
  for (let i = 0; i < n; i++) x += i
  return x
}

it('a producer never turns ASLEEP_FOR_ACKS into AWAKE', async () => {
  const lane = createLaneBuffer(4096)
  const control = createControlBuffer()
  const shared = new SharedArrayBuffer(8)
  const state = new Int32Array(shared)
  const doorbell = new Int32Array(control)
  const worker = new Worker(PUBLISHER, { workerData: { lane, control, shared } })
  let failed: Error | undefined
  worker.on('error', (err) => {
    failed = err
  })
  // Play only once the producer is publishing (bounded: a thread that never starts fails below).
  for (let waited = 0; Atomics.load(state, 1) === 0 && failed === undefined && waited < 30_000; waited += 5) {
    await sleep(5)
  }
  expect(failed).toBeUndefined()
  expect(Atomics.load(state, 1)).toBeGreaterThan(0)

  let rounds = 0
  let forAcks = 0
  let overwritten = 0
  let sink = 0
  const until = performance.now() + PLAY_MS
  while (overwritten === 0 && performance.now() < until) {
    rounds++
    Atomics.store(doorbell, ControlSlot.DOORBELL, Doorbell.ASLEEP_WAKE_ME)
    sink += spin(rounds & 63)
    // A pass ran and the pipeline went to sleep for acks (unless a producer woke it first).
    if (
      Atomics.compareExchange(
        doorbell,
        ControlSlot.DOORBELL,
        Doorbell.ASLEEP_WAKE_ME,
        Doorbell.ASLEEP_FOR_ACKS,
      ) !== Doorbell.ASLEEP_WAKE_ME
    ) {
      continue
    }
    forAcks++
    sink += spin(64)
    const seen = Atomics.compareExchange(
      doorbell,
      ControlSlot.DOORBELL,
      Doorbell.ASLEEP_FOR_ACKS,
      Doorbell.AWAKE,
    )
    if (seen === Doorbell.AWAKE) overwritten++
  }
  Atomics.store(state, 0, 1)
  const count = Atomics.load(state, 1)
  await worker.terminate()

  expect({ overwritten, rounds }).toMatchObject({ overwritten: 0 })
  // The race was really played: the producer published throughout, and both sleeps happened.
  expect(count).toBeGreaterThan(1000)
  expect(forAcks).toBeGreaterThan(1000)
  expect(sink).toBeGreaterThanOrEqual(0)
})

// Idempotency-key crash child: a WAL-first queue (syncMode 'always') on the
// log in argv[2] whose sender is @vinequeue/senders/http with `idempotencyKey:
// 'Idempotency-Key'`, posting JSON to argv[3]. It enqueues items `{ i }` for
// i from argv[4], argv[5] of them, 40 at a time, printing `flushed N` each time
// a flush() covering items up to N-1 resolved (they are in the log). Then it
// waits until the log holds nothing (re-delivered and new items delivered and
// acknowledged), stops, and prints `done`. The parent SIGKILLs the first run.
import { setTimeout as sleep } from 'node:timers/promises'
import { createQueue } from '@vinequeue/core'

const [dir, url, from, count] = process.argv.slice(2)
const q = createQueue({
  sender: {
    module: import.meta.resolve('@vinequeue/senders/http'),
    options: { url, idempotencyKey: 'Idempotency-Key' },
  },
  senderThreads: 1,
  senderConcurrency: 2,
  maxBatchSize: 20,
  flushIntervalMs: 5,
  retryInitialDelayMs: 5,
  retryMaxDelayMs: 50,
  wal: { dir, syncMode: 'always', segmentBytes: 16 * 1024 },
})
await q.start()
const end = Number(from) + Number(count)
for (let i = Number(from); i < end; ) {
  for (let k = 0; k < 40 && i < end; k++) await q.enqueueAsync({ i: i++ })
  await q.flush()
  process.stdout.write(`flushed ${i}\n`)
}
await q.drain()
for (let waited = 0; q.metrics().walPendingItems > 0; waited += 10) {
  if (waited > 30_000) throw new Error(`the log still holds ${q.metrics().walPendingItems} items`)
  await sleep(10)
}
await q.stop()
process.stdout.write('done\n')

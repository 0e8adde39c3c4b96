// Crash-test child for the HTTP sender with a WAL: a WAL-first queue
// (syncMode 'always', small ring, small segments) whose sender module is
// @vinequeue/senders/http, posting JSON to argv[3]. It enqueues numbered
// items `{ i, pad }` into the log in argv[2], prints `started`, then
// `flushed N` each time a flush() covering items 0..N-1 resolved (stdout to a
// pipe is synchronous on Linux: every printed line reaches the parent). The
// parent takes the server down and SIGKILLs this process.
import { createQueue } from '@vinequeue/core'

const [dir, url] = process.argv.slice(2)
const q = createQueue({
  sender: { module: import.meta.resolve('@vinequeue/senders/http'), options: { url } },
  senderThreads: 1,
  senderConcurrency: 2,
  maxBatchSize: 50,
  flushIntervalMs: 5,
  ringBytes: 64 * 1024,
  maxItemBytes: 1024,
  retryInitialDelayMs: 5,
  retryMaxDelayMs: 50,
  circuitBreaker: { minimumRequests: 4, resetTimeoutMs: 200 },
  wal: { dir, syncMode: 'always', segmentBytes: 32 * 1024 },
})
await q.start()
process.stdout.write('started\n')
let i = 0
for (;;) {
  for (let k = 0; k < 37; k++) await q.enqueueAsync({ i, pad: 'x'.repeat(i++ % 100) })
  await q.flush()
  process.stdout.write(`flushed ${i}\n`)
}

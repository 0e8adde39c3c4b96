/**
 * The producer the `crash_duplicates` step kills: a WAL-first queue
 * (`syncMode: 'always'`) whose sender module is @vinequeue/senders/http,
 * posting JSON to the bench's sink (argv[3]); numbered items `{ n, pad }`
 * from argv[4]; `flush()` every FLUSH_EVERY items. Prints `started` once the
 * queue runs. Options come from argv[5] (JSON) so that the step states the
 * in-flight bound it measures against.
 */
import { createQueue } from '@vinequeue/core'

const FLUSH_EVERY = 500
const [dir, url, from, options] = process.argv.slice(2) as [string, string, string, string]
const q = createQueue({
  ...(JSON.parse(options) as { maxInFlightBatches: number; maxBatchSize: number }),
  sender: { module: import.meta.resolve('@vinequeue/senders/http'), options: { url } },
  wal: { dir, syncMode: 'always' },
})
await q.start()
process.stdout.write('started\n')
let n = Number(from)
for (;;) {
  for (let i = 0; i < FLUSH_EVERY; i++) await q.enqueueAsync({ n: n++, pad: 'x'.repeat(64) })
  await q.flush()
}

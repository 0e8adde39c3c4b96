/**
 * Child process entry of the demo's sink (forked by host.ts): wires the
 * HTTP server and its ledger to the IPC channel. argv[2] is the number of
 * events of the run (the ledger's size). The process ends when the parent
 * disconnects (or dies: the channel closes with it).
 */
import { Ledger } from './ledger.ts'
import type { ParentToSink, SinkToParent } from './protocol.ts'
import { SinkServer } from './server.ts'

/** How often the parent hears the sink's counts (ms). */
const STATS_INTERVAL_MS = 200

const total = Number(process.argv[2])
const send = (msg: SinkToParent): void => void process.send!(msg)
const ledger = new Ledger(total)
const server = new SinkServer(ledger, {
  phase: (phase) => send({ __sink: 1, type: 'phase', phase }),
  fatal: (error) => {
    send({ __sink: 1, type: 'failed', message: error.message })
    process.exitCode = 1
    process.disconnect()
  },
})

process.on('message', (msg: ParentToSink) => {
  if (msg?.__sink !== 1) return
  switch (msg.type) {
    case 'outage':
      return server.arm(msg.plan)
    case 'report': {
      const { requests, rejected, outage } = server
      return send({ __sink: 1, type: 'report', ledger: ledger.snapshot(), outage, requests, rejected })
    }
    default: {
      const never: never = msg
      throw new TypeError(`sink: unknown message ${JSON.stringify(never)}`)
    }
  }
})

// Ctrl-C in a terminal reaches the whole process group: the parent handles
// it (and then ends this process), so that it is not reported as a crash.
process.on('SIGINT', () => {})
// The channel keeps this process alive; when the parent goes, so does the sink.
process.once('disconnect', () => {
  clearInterval(stats)
  server.close()
})
const stats = setInterval(
  () => send({ __sink: 1, type: 'stats', unique: ledger.unique, received: ledger.received }),
  STATS_INTERVAL_MS,
)
stats.unref()

send({ __sink: 1, type: 'listening', port: await server.listen(), node: process.version })

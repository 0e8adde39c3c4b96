/**
 * The HTTP sink process (forked by sink-process.ts): a node:http server on
 * 127.0.0.1 and a free port that reads each request body whole, counts its
 * items (tally.ts) and answers 204. Runs in its own process so that the
 * target's CPU is not the bench's event loop; exits when the parent goes.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FromSink, ToSink } from './protocol.ts'
import { wallClockMs } from './protocol.ts'
import { Tally } from './tally.ts'

const tally = new Tally()

function send(msg: FromSink): void {
  process.send!(msg)
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = []
  let size = 0
  req.on('data', (chunk: Buffer) => {
    chunks.push(chunk)
    size += chunk.byteLength
  })
  req.on('end', () => {
    const arrived = wallClockMs()
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)
    try {
      tally.receive(body, req.headers['content-type'] === 'application/msgpack', arrived)
    } catch (err) {
      res.writeHead(400).end(String(err))
      return
    }
    res.writeHead(204).end()
  })
})
// Longer than undici's keep-alive (4 s by default): the client closes idle sockets first.
server.keepAliveTimeout = 10_000

process.on('message', (msg: ToSink) => {
  if (msg?.__sink !== 1) throw new Error(`sink: unexpected message ${JSON.stringify(msg)}`)
  switch (msg.type) {
    case 'arm':
      tally.arm(msg.items, msg.mode, (result) => send({ __sink: 1, type: 'reached', id: msg.id, result }))
      send({ __sink: 1, type: 'armed', id: msg.id })
      break
    case 'clock':
      send({ __sink: 1, type: 'clock', id: msg.id, now: wallClockMs() })
      break
    case 'report':
      send({ __sink: 1, type: 'report', id: msg.id, result: tally.round() })
      break
    default: {
      const never: never = msg
      throw new Error(`sink: unknown message ${JSON.stringify(never)}`)
    }
  }
})
// The parent exited or closed the channel: nothing will read our answers.
process.on('disconnect', () => process.exit(0))

server.listen(0, '127.0.0.1', () => {
  send({ __sink: 1, type: 'listening', port: (server.address() as AddressInfo).port })
})

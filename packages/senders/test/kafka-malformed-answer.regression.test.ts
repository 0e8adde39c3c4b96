import { once } from 'node:events'
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net'
import { createQueue, type DeadLetter, type Queue } from '@vinequeue/core'
import { afterEach, describe, expect, it } from 'vitest'

// A broker that answers nonsense must cost a send, never the sender thread.
// @platformatic/kafka 1.35 called `error.findBy(...)` on errors that lack the
// method when a protocol error reached its base client with `retries: 0` (the
// sender's non-idempotent default): the TypeError was thrown inside a socket
// callback and the thread died ("sender thread failed: error.findBy is not a
// function"). 2.x checks the error's brand first (findErrorBy).

/** A TCP server that answers every Kafka request frame with `answer(correlationId)`. */
async function nonsenseBroker(answer: (correlationId: number) => Buffer): Promise<Server> {
  const server = createServer((socket: Socket) => {
    let pending = Buffer.alloc(0)
    socket.on('error', () => {})
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk])
      while (pending.length >= 4 && pending.length >= 4 + pending.readInt32BE(0)) {
        const size = pending.readInt32BE(0)
        // Request header: api_key int16, api_version int16, correlation_id int32.
        const correlationId = pending.readInt32BE(8)
        pending = pending.subarray(4 + size)
        const body = answer(correlationId)
        const frame = Buffer.alloc(4 + body.length)
        frame.writeInt32BE(body.length, 0)
        body.copy(frame, 4)
        socket.write(frame)
      }
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return server
}

const servers: Server[] = []
const queues: Queue[] = []
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.stop({ timeoutMs: 2000 })))
  for (const s of servers.splice(0)) s.close()
})

const ANSWERS: Array<[string, (correlationId: number) => Buffer]> = [
  // The correlation id, then a body cut short (an ApiVersions v3 answer needs ≥ 7 more bytes).
  ['a truncated answer', (id) => Buffer.from([...int32(id), 0x00])],
  // UNSUPPORTED_VERSION (35) with an empty ApiVersions range: no version left to fall back to.
  ['UNSUPPORTED_VERSION with no versions', (id) => Buffer.from([...int32(id), 0x00, 0x23, 0, 0, 0, 0])],
  // A correlation id the client never sent.
  ['an unknown correlation id', (id) => Buffer.from([...int32(id + 1000), 0x00, 0x00, 0x01, 0x00])],
]

function int32(n: number): number[] {
  const b = Buffer.alloc(4)
  b.writeInt32BE(n)
  return [...b]
}

describe('Kafka sender: malformed broker answers (regression)', () => {
  it.each(ANSWERS)('%s fails the send; the sender thread survives', async (_name, answer) => {
    const server = await nonsenseBroker(answer)
    servers.push(server)
    const { port } = server.address() as AddressInfo
    const letters: DeadLetter[] = []
    const q = createQueue({
      sender: {
        module: '@vinequeue/senders/kafka',
        // retries 0: the failure reaches the client's own error handling at once.
        options: { brokers: [`127.0.0.1:${port}`], topic: 't', retries: 0, requestTimeoutMs: 2000 },
      },
      senderThreads: 1,
      maxAttempts: 2,
      retryInitialDelayMs: 5,
      retryMaxDelayMs: 20,
      flushIntervalMs: 10,
      sendTimeoutMs: 10_000,
      onDeadLetter: (d) => letters.push(d),
    })
    queues.push(q)
    await q.start()
    q.enqueue({ id: 1 })
    await q.drain()

    expect(letters).toHaveLength(1)
    expect(letters[0]!.reason).toMatch(/: SendError: Kafka produce to t failed: /)
    expect(letters[0]!.reason).not.toMatch(/sender thread failed|findBy/)
    expect(q.metrics().senderFailuresTotal).toBe(0)
  })
})

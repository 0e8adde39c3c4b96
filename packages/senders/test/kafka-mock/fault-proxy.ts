import { once } from 'node:events'
import { type AddressInfo, createConnection, createServer, type Server, type Socket } from 'node:net'

/**
 * A test-only TCP proxy between a Kafka client and the brokers of a cluster,
 * one listening port per broker, that can close connections, drop answers or
 * stall both directions on demand.
 *
 * Kafka clients connect to the brokers a Metadata answer names, not to the
 * bootstrap address: the proxy rewrites each broker's host and port in
 * Metadata answers (v9+, the flexible layout the sender's client uses) to
 * its own listener for that broker, so every connection passes through it.
 * Everything else is forwarded byte for byte.
 */
export type Fault = 'none' | 'drop-answers' | 'stall' | 'refuse'

interface Link {
  readonly client: Socket
  readonly broker: Socket
  /** correlation id → [api key, api version] of requests not answered yet. */
  readonly requests: Map<number, [number, number]>
  held: Buffer[]
}

const METADATA = 3

export class FaultProxy {
  readonly brokers: string[]
  /** Protocol surprises (a Metadata version it cannot rewrite); a test should expect none. */
  readonly problems: string[] = []
  /** Answers not forwarded because of 'drop-answers'. */
  droppedAnswers = 0
  /** Answers forwarded to the client, by API key. */
  readonly answered = new Map<number, number>()
  /** Connections closed by closeAll() or refused. */
  closedConnections = 0
  #fault: Fault = 'none'
  readonly #servers: Server[]
  readonly #upstream: Array<{ host: string; port: number }>
  readonly #links = new Set<Link>()

  private constructor(servers: Server[], upstream: Array<{ host: string; port: number }>) {
    this.#servers = servers
    this.#upstream = upstream
    this.brokers = servers.map((s) => `127.0.0.1:${(s.address() as AddressInfo).port}`)
  }

  static async start(upstreamBrokers: readonly string[]): Promise<FaultProxy> {
    const upstream = upstreamBrokers.map((b) => {
      const [host, port] = b.split(':')
      return { host: host!, port: Number(port) }
    })
    const servers = upstream.map(() => createServer())
    await Promise.all(
      servers.map(async (s) => {
        s.listen(0, '127.0.0.1')
        await once(s, 'listening')
      }),
    )
    const proxy = new FaultProxy(servers, upstream)
    for (const [i, s] of servers.entries())
      s.on('connection', (socket) => proxy.#accept(socket, upstream[i]!))
    return proxy
  }

  /** The current fault; switching back to 'none' releases what 'stall' held. */
  get fault(): Fault {
    return this.#fault
  }

  set fault(f: Fault) {
    this.#fault = f
    if (f === 'refuse') this.closeAll()
    if (f !== 'stall') {
      for (const link of this.#links) this.#release(link)
    }
  }

  /** Closes every open connection (both sides). */
  closeAll(): void {
    for (const link of [...this.#links]) this.#drop(link)
  }

  async close(): Promise<void> {
    this.closeAll()
    await Promise.all(this.#servers.map((s) => new Promise((r) => s.close(r))))
  }

  #accept(client: Socket, to: { host: string; port: number }): void {
    if (this.#fault === 'refuse') {
      this.closedConnections++
      client.destroy()
      return
    }
    const broker = createConnection(to.port, to.host)
    const link: Link = { client, broker, requests: new Map(), held: [] }
    this.#links.add(link)
    client.on('error', () => {})
    broker.on('error', () => {})
    client.on('close', () => this.#drop(link))
    broker.on('close', () => this.#drop(link))
    frames(client, (frame) => {
      // Request header: api_key int16, api_version int16, correlation_id int32.
      link.requests.set(frame.readInt32BE(8), [frame.readInt16BE(4), frame.readInt16BE(6)])
      this.#forward(link, broker, frame, false)
    })
    frames(broker, (frame) => {
      const correlationId = frame.readInt32BE(4)
      const request = link.requests.get(correlationId)
      link.requests.delete(correlationId)
      if (this.#fault === 'drop-answers') {
        this.droppedAnswers++
        return
      }
      if (request) this.answered.set(request[0], (this.answered.get(request[0]) ?? 0) + 1)
      const out = request?.[0] === METADATA ? this.#rewriteMetadata(frame, request[1]) : frame
      this.#forward(link, client, out, true)
    })
  }

  #forward(link: Link, to: Socket, frame: Buffer, toClient: boolean): void {
    if (this.#fault === 'stall') {
      // Held in arrival order, both directions in one list; released together.
      link.held.push(Buffer.concat([Buffer.from([toClient ? 1 : 0]), frame]))
      return
    }
    if (!to.destroyed) to.write(frame)
  }

  #release(link: Link): void {
    const held = link.held
    link.held = []
    for (const h of held) {
      const to = h[0] === 1 ? link.client : link.broker
      if (!to.destroyed) to.write(h.subarray(1))
    }
  }

  #drop(link: Link): void {
    if (!this.#links.delete(link)) return
    this.closedConnections++
    link.client.destroy()
    link.broker.destroy()
  }

  /** A Metadata answer with every broker's host/port replaced by this proxy's listener for it. */
  #rewriteMetadata(frame: Buffer, version: number): Buffer {
    if (version < 9) {
      this.problems.push(`Metadata v${version} answer not rewritten (only v9+ is)`)
      return frame
    }
    const r = new Cursor(frame, 4)
    r.int32() // correlation id
    r.skipTaggedFields() // response header v1
    r.int32() // throttle_time_ms
    const head = frame.subarray(4, r.at)
    const count = r.uvarint() - 1
    const brokers: Buffer[] = []
    for (let i = 0; i < count; i++) {
      const nodeId = r.int32()
      const host = r.compactString()
      const port = r.int32()
      const restStart = r.at
      r.compactString() // rack (nullable)
      r.skipTaggedFields()
      const rest = frame.subarray(restStart, r.at)
      const index = this.#upstream.findIndex(
        (u) => u.port === port && (u.host === host || host === 'localhost'),
      )
      if (index < 0)
        this.problems.push(`Metadata names broker ${host}:${port}, which the proxy does not front`)
      const [newHost, newPort] =
        index < 0 ? [host, port] : ['127.0.0.1', Number(this.brokers[index]!.split(':')[1])]
      const hostBytes = Buffer.from(newHost!, 'utf8')
      brokers.push(int32(nodeId), uvarint(hostBytes.length + 1), hostBytes, int32(newPort as number), rest)
    }
    const body = Buffer.concat([head, uvarint(count + 1), ...brokers, frame.subarray(r.at)])
    return Buffer.concat([int32(body.length), body])
  }
}

/** Calls `onFrame` with each complete size-prefixed Kafka frame (size included) read from `socket`. */
function frames(socket: Socket, onFrame: (frame: Buffer) => void): void {
  let pending: Buffer = Buffer.alloc(0)
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
    while (pending.length >= 4 && pending.length >= 4 + pending.readInt32BE(0)) {
      const size = pending.readInt32BE(0)
      onFrame(pending.subarray(0, 4 + size))
      pending = pending.subarray(4 + size)
    }
  })
}

class Cursor {
  constructor(
    readonly buf: Buffer,
    public at: number,
  ) {}
  int32(): number {
    const v = this.buf.readInt32BE(this.at)
    this.at += 4
    return v
  }
  uvarint(): number {
    let v = 0
    let shift = 0
    for (;;) {
      const b = this.buf[this.at++]!
      v |= (b & 0x7f) << shift
      if ((b & 0x80) === 0) return v >>> 0
      shift += 7
    }
  }
  compactString(): string | null {
    const n = this.uvarint() - 1
    if (n < 0) return null
    const s = this.buf.toString('utf8', this.at, this.at + n)
    this.at += n
    return s
  }
  skipTaggedFields(): void {
    const count = this.uvarint()
    for (let i = 0; i < count; i++) {
      this.uvarint() // tag
      this.at += this.uvarint() // size, then the data
    }
  }
}

function uvarint(n: number): Buffer {
  const out: number[] = []
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80)
    n >>>= 7
  }
  out.push(n)
  return Buffer.from(out)
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeInt32BE(n)
  return b
}

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Ledger } from './ledger.ts'
import type { OutagePlan, OutageTimes, SinkPhase } from './protocol.ts'

export interface SinkServerEvents {
  /** The sink entered `phase`. */
  phase(phase: SinkPhase): void
  /** It cannot go on (its port was taken while it was down). */
  fatal(error: Error): void
}

export const SINK_PATH = '/events'
const NDJSON = 'application/x-ndjson'

/**
 * The demo's HTTP target: `POST /events` with an NDJSON body, every line
 * stored in the ledger, then 204. Armed with an OutagePlan, it goes down by
 * itself once it has stored `afterItems` distinct events: 503 to every
 * request for `errorMs`, then no listener at all (connections refused, the
 * kept-alive ones destroyed) for `refuseMs`, then a new listener on the
 * same port. Triggering on its own count, not on a timer of the parent,
 * puts the outage mid-run whatever the machine's speed.
 */
export class SinkServer {
  readonly #ledger: Ledger
  readonly #events: SinkServerEvents
  readonly #startedAt = performance.now()
  #server: Server | undefined
  #port = 0
  #phase: SinkPhase = 'up'
  #plan: OutagePlan | undefined
  #times: { downAt: number; refusingAt: number; upAt: number; firstStoredAfterUpAt: number } | undefined
  readonly #timers = new Set<NodeJS.Timeout>()
  requests = 0
  /** Requests answered 503. */
  rejected = 0

  constructor(ledger: Ledger, events: SinkServerEvents) {
    this.#ledger = ledger
    this.#events = events
  }

  /** Starts listening on 127.0.0.1 (port 0 the first time, the same port after an outage). */
  async listen(): Promise<number> {
    const server = createServer((req, res) => this.#handle(req, res))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.#port, '127.0.0.1', () => {
        server.off('error', reject)
        resolve()
      })
    })
    this.#server = server
    this.#port = (server.address() as AddressInfo).port
    return this.#port
  }

  arm(plan: OutagePlan): void {
    this.#plan = plan
    this.#maybeGoDown()
  }

  get outage(): OutageTimes | undefined {
    return this.#times && { ...this.#times }
  }

  /** Stops listening and cancels a pending outage step. Idempotent. */
  close(): void {
    for (const t of this.#timers) clearTimeout(t)
    this.#timers.clear()
    this.#plan = undefined
    this.#closeListener()
  }

  /** No listener (new connections refused) and every open connection destroyed. */
  #closeListener(): void {
    this.#server?.close()
    this.#server?.closeAllConnections()
    this.#server = undefined
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    this.requests++
    if (req.method !== 'POST' || req.url !== SINK_PATH) return void reply(req, res, 404)
    if (req.headers['content-type'] !== NDJSON || req.headers['content-encoding'] !== undefined)
      return void reply(req, res, 415)
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      // The phase that counts is the one when the whole body is in.
      if (this.#phase !== 'up') {
        this.rejected++
        return void res.writeHead(503, { 'content-type': 'text/plain' }).end('sink down (demo outage)\n')
      }
      this.#ledger.recordBody(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks))
      res.writeHead(204).end()
      const t = this.#times
      if (t && Number.isNaN(t.firstStoredAfterUpAt)) t.firstStoredAfterUpAt = this.#now()
      this.#maybeGoDown()
    })
  }

  #maybeGoDown(): void {
    const plan = this.#plan
    if (!plan || this.#ledger.unique < plan.afterItems) return
    this.#plan = undefined
    this.#times = {
      downAt: this.#now(),
      refusingAt: Number.NaN,
      upAt: Number.NaN,
      firstStoredAfterUpAt: Number.NaN,
    }
    this.#setPhase('errors')
    this.#after(plan.errorMs, () => {
      this.#times!.refusingAt = this.#now()
      this.#setPhase('refusing')
      this.#closeListener()
      this.#after(plan.refuseMs, () => {
        this.listen().then(
          () => {
            this.#times!.upAt = this.#now()
            this.#setPhase('up')
          },
          (err: Error) =>
            this.#events.fatal(new Error(`could not listen again on port ${this.#port}: ${err.message}`)),
        )
      })
    })
  }

  #setPhase(phase: SinkPhase): void {
    this.#phase = phase
    this.#events.phase(phase)
  }

  #after(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer)
      fn()
    }, ms)
    this.#timers.add(timer)
  }

  #now(): number {
    return performance.now() - this.#startedAt
  }
}

function reply(req: IncomingMessage, res: ServerResponse, status: number): void {
  req.resume()
  res.writeHead(status, { 'content-type': 'text/plain' }).end(`${status}\n`)
}

/**
 * The naive peer of the HTTP figures: no queue, no WAL — the producing
 * thread batches the events itself, `JSON.stringify`s each batch and POSTs
 * it with undici (a Pool: keep-alive sockets to the sink).
 */
import { Pool } from 'undici'

/** Sockets of the naive poster's pool by default: the HTTP sender's default `connections`. */
const CONNECTIONS = 16

export class DirectPoster {
  readonly #pool: Pool
  readonly #path: string

  constructor(url: string, connections: number = CONNECTIONS) {
    const u = new URL(url)
    this.#pool = new Pool(u.origin, { connections })
    this.#path = u.pathname
  }

  /** POSTs one JSON body and reads the answer to its end; rejects on a non-2xx status. */
  async post(body: string): Promise<void> {
    const res = await this.#pool.request({
      path: this.#path,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    })
    await res.body.dump()
    if (res.statusCode < 200 || res.statusCode >= 300) throw new Error(`sink answered ${res.statusCode}`)
  }

  close(): Promise<void> {
    return this.#pool.close()
  }
}

/**
 * Keeps at most `limit` requests in flight: `add` resolves once there is
 * room for the next one (at once below the limit); `settled` when all are done.
 */
export class InFlight {
  readonly #limit: number
  readonly #pending = new Set<Promise<void>>()
  #error: unknown

  constructor(limit: number) {
    this.#limit = limit
  }

  async add(request: Promise<void>): Promise<void> {
    const p = request.then(
      () => void this.#pending.delete(p),
      (err: unknown) => {
        this.#pending.delete(p)
        this.#error ??= err
      },
    )
    this.#pending.add(p)
    if (this.#error !== undefined) throw this.#error
    while (this.#pending.size >= this.#limit) await Promise.race(this.#pending)
  }

  async settled(): Promise<void> {
    await Promise.all(this.#pending)
    if (this.#error !== undefined) throw this.#error
  }
}

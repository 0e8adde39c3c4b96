import { type ChildProcess, fork } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { type FromMock, isFromMock, type MockAnswer, type ToMock, type WireRecord } from './protocol.ts'

/**
 * librdkafka's mock Kafka cluster (through node-rdkafka), running in a child
 * process, with librdkafka's consumer to read back.
 *
 * node-rdkafka is a native addon compiled for one Node ABI at install time.
 * The child runs under `VINEQUEUE_RDKAFKA_NODE` (a Node binary) when set —
 * CI builds node-rdkafka once, for Node 24, and runs the Node 22 suite with
 * the cluster's process on Node 24 — else under the Node running the caller.
 * A cluster that cannot start rejects with the child's reason.
 */
export interface MockCluster {
  /** `host:port` of every mock broker. */
  readonly brokers: string[]
  /** The librdkafka version of the mock and the reader. */
  readonly librdkafka: string
  /** A fresh topic (the mock creates it with its default 4 partitions); resolves to its name and partition count. */
  topic(): Promise<{ name: string; partitions: number }>
  /**
   * Each partition's high watermark, by partition: how many records were ever
   * appended to it (the mock drops a partition's oldest batches beyond 5 MB;
   * the count goes on). Cheap whatever the topic holds.
   */
  highWatermarks(topic: string): Promise<number[]>
  /** Every record of `topic` up to each partition's high watermark, read by librdkafka's consumer with CRC checks. */
  read(topic: string, timeoutMs?: number): Promise<MockRecord[]>
  close(): Promise<void>
}

export interface MockRecord {
  readonly partition: number
  readonly offset: number
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly headers: ReadonlyArray<readonly [string, Buffer | null]>
}

const SCRIPT = fileURLToPath(new URL('./child/entry.js', import.meta.url))

/** A request as the caller writes it: the id and the brand are added by `call`. */
type Request =
  Exclude<ToMock, { type: 'close' }> extends infer R
    ? R extends unknown
      ? Omit<R, 'id' | '__kafkaMock'>
      : never
    : never

type Pending = { resolve: (answer: MockAnswer) => void; reject: (e: Error) => void }

/**
 * Forks the mock cluster's process with `brokerCount` brokers and resolves
 * once it has logged its bootstrap servers and its reader has connected.
 * `execPath`: the Node that runs it (the one node-rdkafka was built for).
 */
export async function startMockCluster(
  brokerCount = 3,
  execPath: string = process.env.VINEQUEUE_RDKAFKA_NODE || process.execPath,
): Promise<MockCluster> {
  const child: ChildProcess = fork(SCRIPT, [String(brokerCount)], {
    execPath,
    execArgv: [],
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  })
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-4000)
  })
  const pending = new Map<number, Pending>()
  let nextId = 1
  let exited: string | undefined
  const ready = new Promise<{ bootstrap: string; librdkafka: string }>((resolve, reject) => {
    const why = (reason: string): Error =>
      new Error(
        `librdkafka's mock Kafka cluster did not start (node-rdkafka under ${execPath}): ${reason}` +
          (stderr ? `\n--- its stderr ---\n${stderr}` : '') +
          '\nnode-rdkafka must be built for that Node: run `node scripts/rdkafka.mjs` with it (see .ci/run and VINEQUEUE_RDKAFKA_NODE).',
      )
    child.on('message', (m: unknown) => {
      if (!isFromMock(m)) return
      const msg: FromMock = m
      if (msg.type === 'ready') resolve(msg)
      else if (msg.type === 'failed') reject(why(msg.reason))
      else {
        const p = pending.get(msg.id)
        pending.delete(msg.id)
        if (msg.type === 'error') p?.reject(new Error(`mock cluster: ${msg.error}`))
        else p?.resolve(msg)
      }
    })
    child.on('error', (err) => reject(why(err.message)))
    child.on('exit', (code, signal) => {
      exited = `exited (code ${code}, signal ${signal})`
      reject(why(exited))
      for (const p of pending.values())
        p.reject(new Error(`mock cluster ${exited}${stderr ? `: ${stderr}` : ''}`))
      pending.clear()
    })
  })
  let info: { bootstrap: string; librdkafka: string }
  try {
    info = await ready
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  }

  function call<R extends Request>(msg: R): Promise<Extract<MockAnswer, { type: R['type'] }>> {
    if (exited) return Promise.reject(new Error(`mock cluster ${exited}`))
    const id = nextId++
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve: resolve as (a: MockAnswer) => void, reject })
      child.send({ ...msg, id, __kafkaMock: 1 } as ToMock)
    })
  }
  const bytes = (s: string | null): Buffer | null => (s === null ? null : Buffer.from(s, 'base64'))
  const toRecord = (r: WireRecord): MockRecord => ({
    partition: r.partition,
    offset: r.offset,
    key: bytes(r.key),
    value: bytes(r.value),
    headers: r.headers.map(([k, v]) => [k, bytes(v)] as const),
  })

  return {
    brokers: info.bootstrap.split(','),
    librdkafka: info.librdkafka,
    async topic() {
      const name = `vq-${randomUUID()}`
      const { partitions } = await call({ type: 'topic', topic: name })
      return { name, partitions }
    },
    async highWatermarks(topic) {
      const { high } = await call({ type: 'watermarks', topic })
      return [...high]
    },
    async read(topic, timeoutMs = 30_000) {
      const { records } = await call({ type: 'read', topic, timeoutMs })
      return records.map(toRecord)
    },
    async close() {
      if (exited) return
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      child.send({ __kafkaMock: 1, type: 'close' } satisfies ToMock)
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await gone
      clearTimeout(timer)
    },
  }
}

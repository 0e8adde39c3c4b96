import { type ChildProcess, fork } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'

/**
 * librdkafka's mock Kafka cluster (through node-rdkafka, a devDependency),
 * running in a child process, with librdkafka's consumer to read back.
 *
 * node-rdkafka is a native addon compiled for one Node ABI at install time.
 * The child runs under `VINEQUEUE_RDKAFKA_NODE` (a Node binary) when set —
 * CI builds node-rdkafka once, for Node 24, and runs the Node 22 suite with
 * the cluster's process on Node 24 — else under the Node running the tests.
 * A cluster that cannot start fails the test with the child's reason.
 */
export interface MockCluster {
  /** `host:port` of every mock broker. */
  readonly brokers: string[]
  /** The librdkafka version of the mock and the reader. */
  readonly librdkafka: string
  /** A fresh topic (the mock creates it with its default 4 partitions); resolves to its name and partition count. */
  topic(): Promise<{ name: string; partitions: number }>
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

const SCRIPT = fileURLToPath(new URL('./mock-cluster.mjs', import.meta.url))

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
  const pending = new Map<string, { resolve: (v: any) => void; reject: (e: Error) => void }>()
  let exited: string | undefined
  const ready = new Promise<{ bootstrap: string; librdkafka: string }>((resolve, reject) => {
    const why = (reason: string): Error =>
      new Error(
        `librdkafka's mock Kafka cluster did not start (node-rdkafka under ${execPath}): ${reason}` +
          (stderr ? `\n--- its stderr ---\n${stderr}` : '') +
          '\nnode-rdkafka must be built for that Node: see .ci/run (npm_config_nodedir) and VINEQUEUE_RDKAFKA_NODE.',
      )
    child.on('message', (m: any) => {
      if (m?.type === 'ready') resolve(m)
      else if (m?.type === 'failed') reject(why(m.reason))
      else if (typeof m?.id === 'string') {
        const p = pending.get(m.id)
        pending.delete(m.id)
        if (m.error) p?.reject(new Error(`mock cluster: ${m.error}`))
        else p?.resolve(m)
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

  const call = (msg: Record<string, unknown>): Promise<any> => {
    if (exited) return Promise.reject(new Error(`mock cluster ${exited}`))
    const id = randomUUID()
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject })
      child.send({ ...msg, id })
    })
  }
  const b64 = (s: string | null): Buffer | null => (s === null ? null : Buffer.from(s, 'base64'))

  return {
    brokers: info.bootstrap.split(','),
    librdkafka: info.librdkafka,
    async topic() {
      const name = `vq-${randomUUID()}`
      const { partitions } = await call({ op: 'topic', topic: name })
      return { name, partitions }
    },
    async read(topic, timeoutMs = 30_000) {
      const { records } = await call({ op: 'read', topic, timeoutMs })
      return (records as any[]).map((r) => ({
        partition: r.partition,
        offset: r.offset,
        key: b64(r.key),
        value: b64(r.value),
        headers: (r.headers as [string, string | null][]).map(([k, v]) => [k, b64(v)] as const),
      }))
    },
    async close() {
      if (exited) return
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      child.send({ op: 'close' })
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await gone
      clearTimeout(timer)
    },
  }
}

import { parseArgs } from 'node:util'

export interface Flags {
  /** Events produced in all (ids 0 … events-1). */
  readonly events: number
  /** Producer worker threads besides the main thread. */
  readonly producers: number
  /** How long the sink is down (ms): the first half answering 503, the second refusing connections. 0: no outage. */
  readonly outageMs: number
}

export const usage = `usage: node examples/demo/dist/demo.js [options]
  --events N      events to send, N ≥ 1                           (default 1500000)
  --producers N   producer worker threads besides the main thread  (default 2)
  --outage-ms N   sink outage: N/2 ms of 503, then N/2 ms refusing connections; 0 = none (default 3000)`

/** The command line, or exits with the usage (code 2). */
export function parseFlags(argv: string[] = process.argv.slice(2)): Flags {
  // `pnpm demo -- --events 1000` passes the `--` on.
  if (argv[0] === '--') argv = argv.slice(1)
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        events: { type: 'string', default: '1500000' },
        producers: { type: 'string', default: '2' },
        'outage-ms': { type: 'string', default: '3000' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    })
    if (values.help) {
      console.log(usage)
      process.exit(0)
    }
    const flags = {
      events: Number(values.events),
      producers: Number(values.producers),
      outageMs: Number(values['outage-ms']),
    }
    const bad = [
      !(Number.isSafeInteger(flags.events) && flags.events >= 1) && `--events ${values.events}`,
      !(Number.isSafeInteger(flags.producers) && flags.producers >= 0) && `--producers ${values.producers}`,
      !(Number.isSafeInteger(flags.outageMs) && flags.outageMs >= 0) && `--outage-ms ${values['outage-ms']}`,
    ].filter(Boolean)
    if (bad.length === 0) return flags
    console.error(`invalid: ${bad.join(', ')}`)
  } catch (err) {
    console.error((err as Error).message)
  }
  console.error(usage)
  process.exit(2)
}

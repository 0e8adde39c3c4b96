// A strict parser of the Prometheus text exposition format (version 0.0.4),
// written for the tests: it throws on anything the format does not allow
// rather than guessing. (The parser on npm, parse-prometheus-text-format,
// merges the buckets of differently labelled histogram series into one
// object and drops their _sum and _count, so it cannot check a labelled
// histogram.) Checks: HELP/TYPE before a family's samples, sample names of
// the declared type only (histograms: _bucket, _sum, _count), label syntax
// and escapes, no duplicate series, and per histogram series cumulative
// buckets ending in le="+Inf" equal to _count.

export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

export interface Family {
  readonly name: string
  readonly help: string
  readonly type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped'
  readonly samples: Sample[]
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*/
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped'])

function fail(lineNo: number, line: string, why: string): never {
  throw new Error(`line ${lineNo}: ${why}: ${JSON.stringify(line)}`)
}

function parseValue(text: string, lineNo: number, line: string): number {
  if (text === '+Inf') return Number.POSITIVE_INFINITY
  if (text === '-Inf') return Number.NEGATIVE_INFINITY
  if (text === 'NaN') return Number.NaN
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) fail(lineNo, line, `bad value ${text}`)
  return Number(text)
}

function parseSample(line: string, lineNo: number): Sample {
  const name = NAME.exec(line)?.[0] ?? fail(lineNo, line, 'no metric name')
  let i = name.length
  const labels: Record<string, string> = {}
  if (line[i] === '{') {
    i++
    while (line[i] !== '}') {
      const label = LABEL.exec(line.slice(i))?.[0] ?? fail(lineNo, line, 'bad label name')
      i += label.length
      if (line[i] !== '=' || line[i + 1] !== '"') fail(lineNo, line, 'expected ="')
      i += 2
      let value = ''
      for (;;) {
        const c = line[i++]
        if (c === undefined) fail(lineNo, line, 'unterminated label value')
        if (c === '"') break
        if (c === '\\') {
          const e = line[i++]
          if (e === '\\') value += '\\'
          else if (e === '"') value += '"'
          else if (e === 'n') value += '\n'
          else fail(lineNo, line, `bad escape \\${e}`)
        } else value += c
      }
      if (Object.hasOwn(labels, label)) fail(lineNo, line, `label ${label} twice`)
      labels[label] = value
      if (line[i] === ',') i++
      else if (line[i] !== '}') fail(lineNo, line, 'expected , or }')
    }
    i++
  }
  if (line[i] !== ' ') fail(lineNo, line, 'expected a space before the value')
  const rest = line.slice(i + 1).split(' ')
  if (rest.length > 2 || (rest.length === 2 && !/^-?\d+$/.test(rest[1]!)))
    fail(lineNo, line, 'bad value/timestamp')
  return { name, labels, value: parseValue(rest[0]!, lineNo, line) }
}

export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>()
  const seen = new Set<string>()
  let current: Family | undefined
  const lines = text.split('\n')
  if (lines.at(-1) !== '') throw new Error('the exposition must end with a newline')
  lines.pop()
  lines.forEach((line, index) => {
    const lineNo = index + 1
    if (line === '') return
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line)
      if (!m) return // a plain comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string]
      if (!NAME.test(name) || NAME.exec(name)![0] !== name) fail(lineNo, line, 'bad metric name')
      let family = families.get(name)
      if (!family) {
        family = { name, help: '', type: 'untyped', samples: [] }
        families.set(name, family)
      } else if (family !== current) fail(lineNo, line, `family ${name} declared twice`)
      if (family.samples.length > 0) fail(lineNo, line, `${kind} after the samples of ${name}`)
      if (kind === 'HELP')
        (family as { help: string }).help = rest.replace(/\\n/g, '\n').replace(/\\\\/g, '\\')
      else {
        if (!TYPES.has(rest)) fail(lineNo, line, `unknown type ${rest}`)
        ;(family as { type: string }).type = rest
      }
      current = family
      return
    }
    const sample = parseSample(line, lineNo)
    if (!current) fail(lineNo, line, 'sample before any # TYPE')
    const suffix = sample.name.slice(current.name.length)
    const allowed =
      current.type === 'histogram'
        ? ['_bucket', '_sum', '_count']
        : current.type === 'summary'
          ? ['', '_sum', '_count']
          : ['']
    if (!sample.name.startsWith(current.name) || !allowed.includes(suffix)) {
      fail(lineNo, line, `sample ${sample.name} does not belong to ${current.type} ${current.name}`)
    }
    const key = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())}`
    if (seen.has(key)) fail(lineNo, line, 'duplicate series')
    seen.add(key)
    current.samples.push(sample)
  })
  for (const family of families.values()) if (family.type === 'histogram') checkHistogram(family)
  return families
}

/** Buckets of each series: cumulative, non-decreasing, +Inf last and equal to _count. */
function checkHistogram(family: Family): void {
  const series = new Map<string, { buckets: Array<[number, number]>; count?: number; sum?: number }>()
  for (const s of family.samples) {
    const { le, ...rest } = s.labels
    const key = JSON.stringify(Object.entries(rest).sort())
    const entry = series.get(key) ?? { buckets: [] }
    series.set(key, entry)
    const suffix = s.name.slice(family.name.length)
    if (suffix === '_bucket') {
      if (le === undefined) throw new Error(`${s.name}: a bucket without le`)
      entry.buckets.push([parseValue(le, 0, le), s.value])
    } else if (le !== undefined) throw new Error(`${s.name}: le outside _bucket`)
    else if (suffix === '_count') entry.count = s.value
    else entry.sum = s.value
  }
  for (const [key, { buckets, count, sum }] of series) {
    const where = `${family.name}${key}`
    if (count === undefined || sum === undefined) throw new Error(`${where}: _count or _sum missing`)
    for (let i = 1; i < buckets.length; i++) {
      if (!(buckets[i]![0] > buckets[i - 1]![0])) throw new Error(`${where}: le not increasing`)
      if (buckets[i]![1] < buckets[i - 1]![1]) throw new Error(`${where}: buckets not cumulative`)
    }
    const last = buckets.at(-1)
    if (!last || last[0] !== Number.POSITIVE_INFINITY) throw new Error(`${where}: no le="+Inf" bucket`)
    if (last[1] !== count) throw new Error(`${where}: le="+Inf" ${last[1]} ≠ _count ${count}`)
  }
}

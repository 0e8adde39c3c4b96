import { readFileSync, writeFileSync } from 'node:fs'
import { type Figure, formatValue } from './report.ts'

/**
 * The question each figure answers, by name (first match wins), in the order
 * the groups are drawn. A figure matching none is drawn under "Other".
 */
const QUESTIONS: ReadonlyArray<readonly [title: string, match: RegExp]> = [
  ['Producer hand-off: how fast does an item get into the queue?', /^(enqueue|msgpackr|uint8array)/],
  [
    'End to end in memory: enqueue → pipeline → sender pool',
    /^(e2e_memory|peer\.(e2e_memory|thread_stream))/,
  ],
  ['The producing thread’s event loop at full speed', /^producer\./],
  ['Backpressure: a decision for a stalled target, the pace of a slow one', /^backpressure/],
  ['Durability: the write-ahead log', /^(wal|recovery\.|recovery_record|peer\.naive_json_fdatasync\.items)/],
  ['HTTP end to end, to a sink in another process', /^(e2e_http|peer\.direct_undici)/],
  [
    'Kafka end to end, to librdkafka’s mock cluster in another process (not a real broker’s speed)',
    /^(e2e_kafka|peer\.kafka_direct)/,
  ],
  ['Restart with a 1 GiB backlog', /^(start_empty_wal|start_with_backlog|recovery_queue)/],
  ['Pool topology: one pool or two', /^pool_topology/],
  ['pino: logging through VineQueue', /^pino\./],
]

/** Units where a smaller figure is the better one. */
const LOWER_IS_BETTER = new Set(['ms', 'ns', 's', 'us', 'µs'])

const WIDTH = 1120
const LABEL_X = 16
const BAR_X = 470
const BAR_MAX = 430
const BAR_H = 13
const COLOR = '#6d2c91'
const BASE_COLOR = '#a8a8a8'
/** A figure that is itself a peer or a floor (drawn against a VineQueue figure or another floor). */
const PEER_COLOR = '#4f7396'
// (peer.e2e_memory is VineQueue measured inside the peer rounds.)
const isPeer = (name: string): boolean =>
  /^(peer\.(?!e2e_memory\.)|msgpackr\.|uint8array|fdatasync)/.test(name)

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

function questionOf(name: string): string {
  return QUESTIONS.find(([, match]) => match.test(name))?.[0] ?? 'Other'
}

/**
 * A self-contained SVG of the figures (the bench's results/latest.json): per
 * question, each figure that has a baseline is drawn as a bar beside its
 * same-run baseline, both scaled to the larger of the two, with the ratio.
 * Figures without a baseline (floors, calibration) are left out: they are
 * drawn as the baselines of others.
 */
export function renderChart(figures: readonly Figure[], subtitle = ''): string {
  const groups = new Map<string, Figure[]>()
  for (const [title] of QUESTIONS) groups.set(title, [])
  for (const f of figures) {
    if (!f.baseline) continue
    const title = questionOf(f.name)
    if (!groups.has(title)) groups.set(title, [])
    groups.get(title)!.push(f)
  }
  const body: string[] = []
  let y = 80
  for (const [title, group] of groups) {
    if (group.length === 0) continue
    y += 14
    body.push(`<text x="${LABEL_X}" y="${y}" class="q">${esc(title)}</text>`)
    y += 10
    for (const f of group) {
      const base = f.baseline!
      const max = Math.max(f.value, base.value) || 1
      const lower = LOWER_IS_BETTER.has(f.unit)
      const ratio = base.value !== 0 ? f.value / base.value : Number.NaN
      const bar = (row: number, value: number, name: string, cls: string, color: string): void => {
        const top = y + row * (BAR_H + 4)
        const w = Math.max(1, (value / max) * BAR_MAX)
        body.push(
          `<text x="${LABEL_X}" y="${top + BAR_H - 2}" class="${cls}">${esc(name)}</text>`,
          `<rect x="${BAR_X}" y="${top}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${color}"><title>${esc(`${name}: ${value} ${f.unit}`)}</title></rect>`,
          `<text x="${(BAR_X + w + 6).toFixed(1)}" y="${top + BAR_H - 2}" class="v">${esc(`${formatValue(value)} ${f.unit}`)}</text>`,
        )
      }
      bar(
        0,
        f.value,
        `${f.name}${lower ? '  (lower is better)' : ''}`,
        'n',
        isPeer(f.name) ? PEER_COLOR : COLOR,
      )
      bar(1, base.value, `  vs ${base.name}`, 'b', BASE_COLOR)
      const note = Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : ''
      body.push(`<text x="${WIDTH - 16}" y="${y + BAR_H - 2}" class="r">${esc(note)}</text>`)
      y += 2 * (BAR_H + 4) + 8
    }
  }
  const height = y + 24
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="ui-monospace, SFMono-Regular, Menlo, Consolas, monospace" font-size="11">
<style>
.t { font-size: 16px; font-weight: bold; fill: #222 }
.s { fill: #555 }
.q { font-size: 13px; font-weight: bold; fill: #222; font-family: system-ui, sans-serif }
.n { fill: #222 }
.b { fill: #777 }
.v { fill: #333 }
.r { fill: #222; text-anchor: end; font-weight: bold }
</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="${LABEL_X}" y="26" class="t">VineQueue bench: each figure beside its baseline measured in the same run</text>
<text x="${LABEL_X}" y="46" class="s">${esc(subtitle)}</text>
<rect x="${LABEL_X}" y="58" width="10" height="10" fill="${COLOR}"/><text x="${LABEL_X + 14}" y="67" class="v">VineQueue</text>
<rect x="${LABEL_X + 90}" y="58" width="10" height="10" fill="${PEER_COLOR}"/><text x="${LABEL_X + 104}" y="67" class="v">a peer or floor, against its reference</text>
<rect x="${LABEL_X + 330}" y="58" width="10" height="10" fill="${BASE_COLOR}"/><text x="${LABEL_X + 344}" y="67" class="v">baseline</text>
${body.join('\n')}
</svg>
`
}

/** Reads a results JSON (an array of Figure) and writes its chart. */
export function writeChart(jsonPath: string, svgPath: string, subtitle?: string): void {
  const figures = JSON.parse(readFileSync(jsonPath, 'utf8')) as Figure[]
  writeFileSync(
    svgPath,
    renderChart(
      figures,
      subtitle ??
        `${figures.length} figures from ${jsonPath.split('/').slice(-2).join('/')}; bars of a pair share one scale; ratio = figure ÷ baseline`,
    ),
  )
}

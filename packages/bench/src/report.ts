import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

/** One figure of the run, as written to results/latest.json. */
export interface Figure {
  readonly name: string
  readonly value: number
  readonly unit: string
  /** The floor or peer measured in the same run, to read `value` against. */
  readonly baseline?: { readonly name: string; readonly value: number }
}

const started = performance.now()

/** A progress line on stderr, with the seconds since the run started. */
export function progress(message: string): void {
  const s = ((performance.now() - started) / 1000).toFixed(1).padStart(6)
  process.stderr.write(`[${s}s] ${message}\n`)
}

/** Three significant digits, grouped (1234567 → "1,230,000"; 0.01234 → "0.0123"). */
export function formatValue(value: number): string {
  if (!Number.isFinite(value)) return String(value)
  if (value === 0) return '0'
  const digits = Math.max(0, 2 - Math.floor(Math.log10(Math.abs(value))))
  const rounded = Number(value.toPrecision(3))
  return rounded.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 })
}

/** The figures as a plain-text table: name | value | unit | baseline name | baseline value | ratio. */
export function formatTable(figures: readonly Figure[]): string {
  const header = ['name', 'value', 'unit', 'baseline name', 'baseline value', 'ratio']
  const rows = figures.map((f) => [
    f.name,
    formatValue(f.value),
    f.unit,
    f.baseline?.name ?? '',
    f.baseline ? formatValue(f.baseline.value) : '',
    f.baseline && f.baseline.value !== 0 ? `${(f.value / f.baseline.value).toFixed(2)}` : '',
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  // Numbers right-aligned, text left-aligned.
  const numeric = [false, true, false, false, true, true]
  const line = (cells: string[]): string =>
    `| ${cells.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`
  const rule = `|${widths.map((w, i) => (numeric[i] ? `${'-'.repeat(w + 1)}:` : `:${'-'.repeat(w + 1)}`)).join('|')}|`
  return [line(header), rule, ...rows.map(line)].join('\n')
}

/** Writes the figures as JSON (an array of Figure), creating the folder. */
export function writeJson(path: string | URL, figures: readonly Figure[]): void {
  const file = path instanceof URL ? fileURLToPath(path) : path
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, `${JSON.stringify(figures, null, 2)}\n`)
}

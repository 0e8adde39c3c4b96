import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { renderChart } from '../src/chart.ts'
import { type Figure, formatValue } from '../src/report.ts'

const committed = JSON.parse(
  readFileSync(new URL('../results/latest.json', import.meta.url), 'utf8'),
) as Figure[]

/** The text of every <text> element, in order. */
const texts = (svg: string): string[] =>
  [...svg.matchAll(/<text [^>]*>([^<]*)<\/text>/g)].map((m) =>
    m[1]!
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&amp;/g, '&'),
  )

describe('renderChart', () => {
  it('draws every figure that has a baseline as a bar beside it, with both values and the ratio', () => {
    const svg = renderChart(committed)
    const all = texts(svg)
    const withBaseline = committed.filter((f) => f.baseline)
    expect(withBaseline.length).toBeGreaterThan(30)
    for (const f of withBaseline) {
      const at = all.findIndex((t) => t === f.name || t.startsWith(`${f.name}  (`))
      expect(at, f.name).toBeGreaterThanOrEqual(0)
      const row = all.slice(at, at + 6)
      expect(row).toContain(`${formatValue(f.value)} ${f.unit}`)
      expect(row).toContain(`  vs ${f.baseline!.name}`)
      expect(row).toContain(`${formatValue(f.baseline!.value)} ${f.unit}`)
      expect(row).toContain(`${(f.value / f.baseline!.value).toFixed(2)}×`)
    }
    // One pair of bars per figure drawn, plus the three legend swatches and the background.
    expect(svg.match(/<rect /g)).toHaveLength(2 * withBaseline.length + 4)
  })

  it('groups the figures by question, in order, and escapes what it prints', () => {
    const figures: Figure[] = [
      { name: 'pool_topology.x', value: 2, unit: 'items/s', baseline: { name: 'b<&>"', value: 1 } },
      { name: 'enqueue.x', value: 1, unit: 'ns', baseline: { name: 'floor', value: 2 } },
      { name: 'unknown.x', value: 1, unit: 'items/s', baseline: { name: 'floor', value: 1 } },
      { name: 'floor.alone', value: 1, unit: 'items/s' },
    ]
    const svg = renderChart(figures, 'a & b')
    const all = texts(svg)
    const q1 = all.indexOf('Producer hand-off: how fast does an item get into the queue?')
    const q2 = all.indexOf('Pool topology: one pool or two')
    const q3 = all.indexOf('Other')
    expect(q1).toBeGreaterThan(0)
    expect(q2).toBeGreaterThan(q1)
    expect(q3).toBeGreaterThan(q2)
    expect(all).toContain('enqueue.x  (lower is better)')
    expect(all).toContain('  vs b<&>"')
    expect(all).toContain('a & b')
    expect(all.some((t) => t.includes('floor.alone'))).toBe(false)
    expect(svg).not.toMatch(/&(?!amp;|lt;|gt;|quot;)/)
  })
})

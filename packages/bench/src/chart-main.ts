/**
 * `node dist/chart-main.js [results.json] [out.svg]`: draws the chart of a
 * results file without running the bench (default: results/latest.json →
 * results/latest.svg).
 */
import { fileURLToPath } from 'node:url'
import { writeChart } from './chart.ts'

const [json, svg] = process.argv.slice(2)
const input = json ?? fileURLToPath(new URL('../results/latest.json', import.meta.url))
const output = svg ?? input.replace(/\.json$/, '.svg')
writeChart(input, output)
process.stderr.write(`wrote ${output}\n`)

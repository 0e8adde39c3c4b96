import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

// The suite runs on Node 22 and on Node 24 (.ci/run); these make a run on
// the wrong Node fail instead of passing quietly.
const root = new URL('../../../', import.meta.url)

function parse(version: string): number[] {
  return version.replace(/^v/, '').split('.').map(Number)
}

function atLeast(version: number[], floor: number[]): boolean {
  for (let i = 0; i < floor.length; i++) {
    if ((version[i] ?? 0) !== floor[i]) return (version[i] ?? 0) > floor[i]!
  }
  return true
}

describe('runtime', () => {
  it('this Node meets the engines floor every package declares', () => {
    const manifests = [
      'package.json',
      'packages/core/package.json',
      'packages/wal/package.json',
      'packages/senders/package.json',
    ].map((path) => JSON.parse(readFileSync(new URL(path, root), 'utf8')) as { engines: { node: string } })
    const floors = new Set(manifests.map((m) => m.engines.node))
    expect([...floors]).toEqual(['>=22.22'])
    expect(atLeast(parse(process.versions.node), [22, 22])).toBe(true)
  })

  // VINEQUEUE_TEST_NODE_MAJOR is set by .ci/run for each of its two runs.
  it.runIf(process.env.VINEQUEUE_TEST_NODE_MAJOR)('runs on the Node major CI asked for', () => {
    expect(parse(process.versions.node)[0]).toBe(Number(process.env.VINEQUEUE_TEST_NODE_MAJOR))
  })
})

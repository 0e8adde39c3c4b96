import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** The fixture sender module's URL. */
export const recordingSender: URL = new URL('./fixtures/recording-sender.mjs', import.meta.url)

export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'vq-test-'))
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

export function readLines<T = any>(file: string): T[] {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return []
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as T)
}

/** Polls `fn` until it returns true (bounded). */
export async function waitFor(fn: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!fn()) {
    if (Date.now() > deadline) throw new Error('waitFor: condition not met in time')
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** An in-thread sender double that records items and can be paused or made to fail. */
export class SinkDouble {
  items: unknown[] = []
  batches: number[] = []
  #gate: Promise<void> | undefined
  #open: (() => void) | undefined
  failNext = 0

  pause(): void {
    this.#gate ??= new Promise((resolve) => {
      this.#open = resolve
    })
  }

  resume(): void {
    this.#open?.()
    this.#gate = undefined
    this.#open = undefined
  }

  readonly send = async (batch: { count: number; items(): unknown[] }): Promise<undefined> => {
    const items = batch.items()
    if (this.#gate) await this.#gate
    if (this.failNext > 0) {
      this.failNext--
      throw new Error('sink double: failing on purpose')
    }
    this.batches.push(batch.count)
    this.items.push(...items)
    return undefined
  }
}

import { createRequire } from 'node:module'
import { ITEM_PACKR_OPTIONS } from '@vinequeue/wal/batch-records'
import type { Packr, Unpackr } from 'msgpackr'

type Msgpackr = typeof import('msgpackr')
let msgpackr: Msgpackr | undefined

/**
 * msgpackr, loaded on first use and through its CommonJS build, which loads
 * faster than its ES module entry with the native string extractor (note
 * `codec.load_ms` in packages/bench/README.md). A thread that never packs or decodes
 * (the pipeline thread; a sender thread whose sender only forwards the
 * encoded bytes) never pays for it, which shortens queue.start().
 */
function load(): Msgpackr {
  msgpackr ??= createRequire(import.meta.url)('msgpackr') as Msgpackr
  return msgpackr
}

/** A packer with the batch format's options (@vinequeue/wal/batch-records), on every thread of a queue. */
export function createPackr(): Packr {
  return new (load().Packr)({ ...ITEM_PACKR_OPTIONS })
}

/** `mapsAsObjects: false` only for decode.ts's second pass (maps with non-string keys). */
export function createUnpackr(extra?: { readonly mapsAsObjects?: boolean }): Unpackr {
  return new (load().Unpackr)({ ...ITEM_PACKR_OPTIONS, ...extra })
}

/** msgpackr's pack flags for writing in place: REUSE_BUFFER_MODE | RESERVE_START_SPACE. */
export function packModes(): number {
  const { REUSE_BUFFER_MODE, RESERVE_START_SPACE } = load()
  return REUSE_BUFFER_MODE | RESERVE_START_SPACE
}

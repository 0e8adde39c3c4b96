import { createRequire } from 'node:module'
import { ITEM_PACKR_OPTIONS } from '@vinequeue/wal/batch-records'
import type { Packr, Unpackr } from 'msgpackr'

type Msgpackr = typeof import('msgpackr')
let msgpackr: Msgpackr | undefined

/**
 * msgpackr, loaded on first use, through its single-file CommonJS build
 * without the native string extractor (`msgpackr/index-no-eval`).
 *
 * Not the native extractor (msgpackr-extract 3.0.x): its module init, which
 * runs again in every thread that loads it, rewrites a token table that all
 * threads share, so a thread decoding meanwhile misreads where strings are
 * and gets other bytes for them — map keys and strings garbled, numbers
 * intact, no error. Here that happened in a run's first batches, while the
 * producer threads were starting (test/codec/native-extractor-race.regression.test.ts).
 * Decoding without it cost little (note `codec.native_extractor` in
 * packages/bench/README.md), and no thread of a queue loads the addon.
 *
 * Lazily: a thread that never packs or decodes (the pipeline thread; a
 * sender thread whose sender only forwards the encoded bytes) never pays
 * for it, which shortens queue.start() (note `codec.load_ms`).
 */
function load(): Msgpackr {
  msgpackr ??= createRequire(import.meta.url)('msgpackr/index-no-eval') as Msgpackr
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

import { DEFAULT_SEGMENT_BYTES } from '../defaults.ts'
import { WalError, WalErrorCodes } from '../errors.ts'
import { checkCodecOptions, type PayloadCodecOptions } from '../format/payload-codec.ts'
import { nodeFs, type WalFs } from './fs.ts'
import type { WalDamage } from './quarantine.ts'

export interface WalOptions extends PayloadCodecOptions {
  /** A segment is closed and a new one started past this size. Default 64 MiB. */
  readonly segmentBytes?: number
  /** File-system layer (tests inject faults through it). Default node:fs. */
  readonly fs?: WalFs
  /**
   * Delete acknowledged segments in libuv's thread pool instead of on the
   * calling thread (unlinking a large synced file frees its extents: a stall
   * for a thread that also appends). `ack()` returns before the file is
   * gone; a failed deletion is thrown (WalError IO) by the next `ack()`, and
   * the file, acknowledged, is deleted at the next open. Default false
   * (deleted before `ack()` returns).
   */
  readonly deleteInBackground?: boolean
  /**
   * Called (on the owner thread, during `open` too) for each piece of damage
   * found: a damaged region, a frame quarantined, misplaced frames, a gap in
   * sequence numbers, a stray file. Counted in `gaps` and `quarantined`
   * whether or not it is given.
   */
  readonly onDamage?: (damage: WalDamage) => void
}

/** The options with their defaults, checked. */
export interface ResolvedWalOptions {
  readonly fs: WalFs
  readonly segmentBytes: number
  readonly codec: PayloadCodecOptions
  readonly deleteInBackground: boolean
  readonly onDamage: ((damage: WalDamage) => void) | undefined
}

/** @throws WalError USAGE for an option the log cannot take (before anything touches the disk). */
export function resolveWalOptions(options: WalOptions): ResolvedWalOptions {
  checkCodecOptions(options)
  const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES
  if (!Number.isInteger(segmentBytes) || segmentBytes < 4096) {
    throw new WalError(WalErrorCodes.USAGE, `segmentBytes must be an integer ≥ 4096 (got ${segmentBytes})`)
  }
  return {
    fs: options.fs ?? nodeFs,
    segmentBytes,
    codec: { compression: options.compression ?? false, encryption: options.encryption },
    deleteInBackground: options.deleteInBackground ?? false,
    onDamage: options.onDamage,
  }
}

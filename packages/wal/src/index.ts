export { DEFAULT_SEGMENT_BYTES } from './defaults.ts'
export type { WalErrorCode } from './errors.ts'
export { WalError, WalErrorCodes } from './errors.ts'
export { BatchRecord, batchRecordSize, ITEM_PACKR_OPTIONS } from './format/batch-records.ts'
export type { FrameCheck, FrameHeader } from './format/frame.ts'
export {
  ACK_RECORD_VERSION,
  checkFrame,
  encodeAckRecord,
  encodeFrame,
  FRAME_HEADER_BYTES,
  FrameFlag,
  isAckRecord,
} from './format/frame.ts'
export type { PayloadCodecOptions } from './format/payload-codec.ts'
export type { ScannedFrame, SegmentScan } from './format/segment-scan.ts'
export { isTornWrite, scanSegment, scanSegmentChunks } from './format/segment-scan.ts'
export type { WalFs } from './log/fs.ts'
export { nodeFs } from './log/fs.ts'
export { QUARANTINE_DIR } from './log/layout.ts'
export type { WalOptions } from './log/options.ts'
export type { WalDamage, WalDamageKind } from './log/quarantine.ts'
export type { WalFrame } from './log/reader.ts'
export { WalReader } from './log/reader.ts'
export type { RecoveryReport } from './log/recover.ts'
export { WriteAheadLog } from './log/write-ahead-log.ts'

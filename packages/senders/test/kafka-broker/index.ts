export type {
  BrokerRecord,
  KafkaBrokerOptions,
  ProduceFailure,
  RequestLogEntry,
} from './broker.ts'
export { ApiKeys, KafkaBroker, KafkaErrorCodes } from './broker.ts'
export type { DecodedBatch, DecodedRecord } from './record-batch.ts'
export { CorruptBatchError, decodeRecordBatches } from './record-batch.ts'

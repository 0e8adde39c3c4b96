export { default } from './kafka-sender.ts'
export type { KafkaCompression, KafkaSaslOptions, KafkaSenderOptions } from './options.ts'
export { supportedCompressions } from './options.ts'

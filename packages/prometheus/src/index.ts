export type { QueueMetricsOptions } from './options.ts'
export type { QueueMetricsRegistration } from './register.ts'
export { registerQueueMetrics } from './register.ts'

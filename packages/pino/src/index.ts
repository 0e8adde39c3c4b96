export { VineQueueDestination, vinequeueDestination } from './destination.ts'
export type { VineQueueDestinationOptions } from './options.ts'

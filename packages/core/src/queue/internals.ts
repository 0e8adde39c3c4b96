import type { Worker } from 'node:worker_threads'

/**
 * Not exported from the package index: lets tests reach a queue's pipeline
 * thread (to kill it) through dist/queue/internals.js.
 */
export const pipelineWorkers: WeakMap<object, Worker> = new WeakMap()

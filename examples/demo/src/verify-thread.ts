/**
 * Worker thread entry: checks one range of ids of the sink's ledger
 * (shared memory, in workerData) and posts the RangeResult.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { checkRange, type RangeCheck } from './verify.ts'

parentPort!.postMessage(checkRange(workerData as RangeCheck))

/**
 * An idle thread with the pause sampler: the floor for the pipeline
 * thread's pauses (what the machine's scheduling alone costs a thread that
 * does nothing). Stays alive through its parent port until terminated.
 */
import { parentPort } from 'node:worker_threads'
import { startSampler } from './sampler.ts'

startSampler('idle')
parentPort?.on('message', () => {})

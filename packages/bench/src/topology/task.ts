/** A pre-framed batch in shared memory, as the pipeline hands it to a sender thread. */
export interface TopologyTask {
  readonly slab: SharedArrayBuffer
  readonly byteLength: number
  readonly count: number
  /** Simulated target round trip (ms). */
  readonly ioMs: number
}

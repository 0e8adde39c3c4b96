/**
 * The log's defaults, in a module of their own (also `@vinequeue/wal/defaults`)
 * so that a caller that only resolves options — @vinequeue/core on the
 * queue's thread — takes them without loading the log.
 */

/** `segmentBytes` when not given: a segment is sealed and a new one started past 64 MiB. */
export const DEFAULT_SEGMENT_BYTES: number = 64 * 1024 * 1024

/**
 * thread-stream worker target: a destination that discards every chunk.
 * `decodeStrings: false` keeps Writable from turning each string back into a
 * Buffer, so the worker does only thread-stream's own work (read the shared
 * buffer, UTF-8 decode). autoDestroy (the default) emits 'close' after end(),
 * which thread-stream needs to finish.
 */
import { Writable } from 'node:stream'

export default async function sink(): Promise<Writable> {
  return new Writable({
    decodeStrings: false,
    write(_chunk, _encoding, callback) {
      callback()
    },
  })
}

/**
 * The file piscina loads in each sender thread: a CommonJS module that
 * loads the thread's real code (entry.ts) through import() and hands piscina
 * a plain function.
 *
 * piscina require()s its task file before trying import(). For an ES module
 * that is Node's require(esm), and a thread terminated while require(esm)
 * links the module (its CJS facade) aborts the whole process on Node 22 and
 * 24 (`Assertion failed: facade->InstantiateModule(...)` in
 * ModuleWrap::CreateRequiredModuleFacade). The pool terminates threads that
 * are still loading whenever start() fails (a sender that refuses its
 * options) or stop() comes early, so the queue must never let piscina
 * require() an ES module; a termination during import() only ends the thread.
 */
import type { SenderTask, SenderTaskResult } from './protocol.ts'

const entry: Promise<(task: SenderTask) => Promise<SenderTaskResult>> = import('./entry.ts').then(
  (m) => m.default,
)
// (Started at load, like the ES module it replaces: each thread loads the sender at startup.)
entry.catch(() => {})

module.exports = async function run(task: SenderTask): Promise<SenderTaskResult> {
  return (await entry)(task)
}

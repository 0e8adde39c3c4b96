/**
 * The parent's Node flags minus those a worker started from a file rejects:
 * under `node --input-type=module -e …` a worker inheriting `--input-type`
 * fails to start (same issue as babel/babel#18131).
 */
export function workerExecArgv(): string[] {
  return process.execArgv.filter((arg) => !arg.startsWith('--input-type'))
}

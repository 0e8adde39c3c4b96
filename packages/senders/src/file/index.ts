export { default } from './file-sender.ts'
export type { FileSenderOptions } from './options.ts'

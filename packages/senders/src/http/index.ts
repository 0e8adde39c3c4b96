export { default } from './http-sender.ts'
export type { HttpBodyFormat, HttpMethod, HttpSenderOptions, HttpSenderTlsOptions, Pem } from './options.ts'

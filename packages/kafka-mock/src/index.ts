export type { MockCluster, MockRecord } from './cluster.ts'
export { startMockCluster } from './cluster.ts'

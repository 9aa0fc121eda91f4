/**
 * Runs in every test file (vitest setupFiles): after the file, the etcd
 * clusters its helpers started are stopped and the temp directories they made
 * are removed. A process exit hook is not enough: vitest ends its worker
 * processes without running them.
 */
import { afterAll } from 'vitest';
import { closeEtcdClusters } from './etcd.ts';
import { removeTempDirs } from './spawn.ts';

afterAll(async () => {
  await closeEtcdClusters();
  removeTempDirs();
});

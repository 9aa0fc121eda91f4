/**
 * The cluster's entry point: the server imports this module dynamically, and
 * only with --cluster-etcd, so an instance alone loads none of it (nor etcd3
 * and gRPC, which store.ts imports in turn).
 */
import os from 'node:os';
import type { ServerConfig } from '../config/schema.ts';
import { defaultInstanceId } from './identity.ts';
import { ClusterNode, type ClusterNodeOptions } from './node.ts';
import { openEtcdStore } from './store.ts';

export { ClusterNode } from './node.ts';

/** Opens the etcd client (a bad TLS or password file throws CLUSTER_CONFIG here) and makes the node; start() connects. */
export async function createCluster(config: ServerConfig, deps: Omit<ClusterNodeOptions, 'config' | 'instance' | 'store'>): Promise<ClusterNode> {
  const cluster = config.cluster!;
  const store = await openEtcdStore(cluster);
  const instance = cluster.instance ?? defaultInstanceId(os.hostname(), config.listen[0]);
  return new ClusterNode({ ...deps, config: cluster, instance, store });
}

/**
 * The default instance ID, pure: the hostname and the first listen address,
 * so that two instances on one host (different ports) and the same instance
 * across restarts get distinct and stable names without configuration.
 */
export function defaultInstanceId(hostname: string, listen: { host: string; port: number } | undefined): string {
  const parts = [hostname || 'rrdns', ...(listen ? [listen.host, String(listen.port)] : [])];
  const id = parts
    .join('-')
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .slice(0, 128);
  return id.length > 0 ? id : 'rrdns';
}

/**
 * The local address health checks connect from (--check-source-address).
 * One address, of one family: probes to targets of that family go from it,
 * probes to the other family from the system's default (the kernel picks the
 * source by route, as without the option). Pinning the source is how an
 * operator makes checks leave through one interface, and how the cluster tests
 * give one instance a network path of its own to a backend.
 */
import net from 'node:net';
import { ErrorCode, RrdnsError } from '../errors.ts';

/** The source for a probe to a target of `family`: `source` when it is of that family, else undefined (the default). */
export function localAddressFor(source: string | undefined, family: 4 | 6): string | undefined {
  if (source === undefined) return undefined;
  return net.isIP(source) === family ? source : undefined;
}

/**
 * Resolves when `address` can be bound on this host (port 0, TCP), rejects
 * with CONFIG_INVALID naming the option otherwise: an address the host does
 * not have would fail every probe with EADDRNOTAVAIL, which reads as every
 * backend down rather than as the configuration error it is.
 */
export function assertLocalAddress(address: string, what = '--check-source-address'): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(new RrdnsError(ErrorCode.CONFIG_INVALID, `${what} ${address}: not an address of this host (${e.code ?? e.message})`, { cause: e }));
    });
    server.listen({ host: address, port: 0, exclusive: true }, () => server.close(() => resolve()));
  });
}

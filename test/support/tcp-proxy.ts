/**
 * A TCP relay on loopback that a test can cut and heal: a network partition
 * between one client and a server, without touching either of them. While cut,
 * every relayed connection is reset and new ones are reset as soon as they are
 * accepted (what a client sees when a firewall rejects); heal() lets new
 * connections through again.
 *
 *   const p = await startTcpProxy({ host: '127.0.0.1', port: etcdPort });
 *   p.url                     // 'http://127.0.0.1:<proxy port>': give this to the client
 *   p.cut(); …; p.heal();
 *   await p.close();
 */
import net from 'node:net';

export interface TcpProxy {
  readonly port: number;
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly isCut: boolean;
  /** Connections relayed so far. */
  readonly relayed: number;
  cut(): void;
  heal(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }, listenHost = '127.0.0.1'): Promise<TcpProxy> {
  const pairs = new Set<[net.Socket, net.Socket]>();
  let isCut = false;
  let relayed = 0;
  const server = net.createServer((client) => {
    client.on('error', () => {});
    if (isCut) {
      client.resetAndDestroy();
      return;
    }
    relayed++;
    const upstream = net.connect({ host: target.host, port: target.port });
    // The server refused or dropped us: the client sees a reset, as from a TCP load balancer in front of it.
    upstream.on('error', () => client.resetAndDestroy());
    client.on('error', () => upstream.destroy());
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    const drop = () => pairs.delete(pair);
    client.once('close', () => {
      drop();
      upstream.destroy();
    });
    upstream.once('close', () => {
      drop();
      client.destroy();
    });
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: listenHost, port: 0 }, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: `http://${listenHost}:${port}`,
    get isCut() {
      return isCut;
    },
    get relayed() {
      return relayed;
    },
    cut() {
      isCut = true;
      for (const [client, upstream] of pairs) {
        client.resetAndDestroy();
        upstream.destroy();
      }
      pairs.clear();
    },
    heal() {
      isCut = false;
    },
    async close() {
      isCut = true;
      for (const [client, upstream] of pairs) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

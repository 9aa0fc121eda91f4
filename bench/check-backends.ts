/**
 * The backends `npm run bench:checks` probes, in a process of their own (their
 * CPU must not be counted as rrdns's): a listener on the same port on each of
 * the given loopback addresses answering every HTTP/1.1 request `200 ok`.
 *
 * A minimal responder on `net`, not node:http: on two shared cores the
 * backends must not be what limits the probe rate (node:http at 5,000
 * requests/s needs a good part of a core, and a backend falling behind shows
 * up as check timeouts that are not rrdns's). It counts a request per header
 * block (`\r\n\r\n`; health checks send no body), answers each with a fixed
 * response, keeps the connection open (idle ones 10 s) unless the request
 * said `connection: close`.
 *
 *   node bench/check-backends.ts PORT ADDRESS...
 *
 * Prints `{"ready":true}` once every listener is up; then answers each line
 * `stats` on stdin with `{"requests":N,"connections":N}` (totals since start).
 * Exits when stdin closes, and after 300 s whatever happens (bounded).
 */
import net from 'node:net';
import readline from 'node:readline';

const [portText, ...addresses] = process.argv.slice(2);
const port = Number(portText);
let requests = 0;
let connections = 0;
const KEEP = Buffer.from('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nkeep-alive: timeout=10\r\n\r\nok');
const CLOSE = Buffer.from('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
const sockets = new Set<net.Socket>();

function serve(socket: net.Socket): void {
  connections++;
  sockets.add(socket);
  socket.setTimeout(10_000, () => socket.destroy());
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => {});
  let pending = '';
  socket.on('data', (chunk: Buffer) => {
    pending += chunk.toString('latin1');
    for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
      const head = pending.slice(0, end);
      pending = pending.slice(end + 4);
      requests++;
      if (/\r\nconnection:\s*close/i.test(head)) {
        socket.end(CLOSE);
        return;
      }
      socket.write(KEEP);
    }
    if (pending.length > 16_384) socket.destroy();
  });
}

const servers: net.Server[] = [];
for (const address of addresses) {
  const server = net.createServer(serve);
  servers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host: address, backlog: 4096 }, () => resolve());
  });
}
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);

const stop = () => {
  for (const s of sockets) s.destroy();
  process.exit(0);
};
setTimeout(stop, 300_000).unref();
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (line.trim() === 'stats') process.stdout.write(`${JSON.stringify({ requests, connections })}\n`);
});
rl.on('close', stop);

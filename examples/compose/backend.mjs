// A tiny web backend for the docker-compose example: answers GET /healthz with
// 200 "ok" (what rrdns checks) and anything else with a line naming itself, so
// `curl http://www.compose.test:8080/` shows which backend DNS picked.
//
//   ADDRESS=127.0.0.21 PORT=8080 NAME=web1 node backend.mjs
//
// Plain node:http, no dependencies: it runs in the stock node image.
import http from 'node:http';

const address = process.env.ADDRESS ?? '127.0.0.1';
const port = Number(process.env.PORT ?? 8080);
const name = process.env.NAME ?? `backend-${address}`;

const server = http.createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain' }).end(`hello from ${name} (${address}:${port})\n`);
});
// Idle keep-alive connections must not hold up a stop.
server.keepAliveTimeout = 2000;

server.listen(port, address, () => console.log(`${name} listening on ${address}:${port}`));

// PID 1 in its container: handle the stop signal, or `docker stop` waits 10 s and kills.
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    console.log(`${name}: ${signal}, closing`);
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}

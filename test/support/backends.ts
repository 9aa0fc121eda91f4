/**
 * Real backends for health-check tests, each on its own loopback address
 * (127.0.0.11, 127.0.0.12, …: Linux routes all of 127/8 to lo) and an ephemeral
 * port that survives stop()/start(). They count requests (`hits`) and open
 * connections, record what they were sent, and can be switched between modes.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { tempDir } from './spawn.ts';

export type BackendMode =
  | 'ok' // 200 'OK body'
  | 'status500' // 500
  | 'wrongBody' // 200 with another body
  | 'hang' // accept the request, never answer
  | 'reset' // TCP RST when the request arrives
  | 'flap' // 200, 500, 200, 500… one per request
  | 'redirect' // 302 to /elsewhere (which answers 200 'OK body')
  | 'redirectAway' // 302 to http://elsewhere.test/ (another host)
  | 'big' // 200, 'BEGIN' + 1 MiB + 'END', then the response is left open
  | 'stallBody' // 200 with a content-length of 100, 'OK' sent, the rest never
  | 'dropReused'; // 200 on a connection's first request; a later request on it: the socket is closed unanswered (a server that dropped an idle keep-alive connection)

export interface SeenRequest {
  method: string;
  url: string;
  host: string | undefined;
  userAgent: string | undefined;
  /** TLS SNI the client sent (https backends). */
  servername: string | undefined;
  headers: http.IncomingHttpHeaders;
  /** Arrival time (performance.now()), for tests of how checks are spread in time. */
  at: number;
  /** The client's address (the prober's source address). */
  from: string;
}

export interface Backend {
  readonly address: string;
  readonly port: number;
  /** HTTP requests received (TCP backends: connections accepted). */
  readonly hits: number;
  /** Connections currently open on the server side. */
  readonly connections: number;
  /** Connections accepted since the backend started. */
  readonly accepted: number;
  /** The last 100 requests, oldest first. */
  readonly requests: readonly SeenRequest[];
  /** Connections accepted per client address since the backend started (refused ones included). */
  readonly peers: ReadonlyMap<string, number>;
  /** HTTP requests received per client address (TCP backends: connections accepted and not refused). */
  readonly hitsFrom: ReadonlyMap<string, number>;
  /**
   * Connections from these client addresses are reset (TCP RST) as soon as
   * they are accepted, whatever the mode: the backend is down for a prober that
   * connects from one of them and up for the others. [] refuses nobody.
   */
  refuseFrom(addresses: readonly string[]): void;
  setMode(mode: BackendMode): void;
  /** Extra headers the 'ok' answers carry from now on. */
  setHeaders(headers: Record<string, string>): void;
  /** Closes the listener and every connection: connection refused afterwards. */
  stop(): Promise<void>;
  /** Listens again on the same address and port. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export interface HttpsBackend extends Backend {
  /** PEM file of the self-signed certificate (it is its own CA). */
  readonly caPath: string;
  /** The name in the certificate. */
  readonly certName: string;
}

export const BIG_BODY_BYTES = 1024 * 1024;
const BIG_CHUNK = Buffer.alloc(64 * 1024, 'x');

let nextHost = 11;
/** A fresh loopback address for this process: 127.0.0.11, 127.0.0.12, … */
export function nextLoopback(): string {
  if (nextHost > 254) throw new Error('out of loopback addresses');
  return `127.0.0.${nextHost++}`;
}

export const CERT_NAME = 'backend.test';
let certCache: { dir: string; key: Buffer; cert: Buffer; certPath: string } | undefined;

/** A self-signed certificate for backend.test, generated once per process with openssl. */
export function selfSignedCert(): { key: Buffer; cert: Buffer; certPath: string } {
  if (certCache) return certCache;
  const dir = tempDir('health');
  const keyPath = path.join(dir, 'key.pem');
  const certPath = path.join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
      '-subj', `/CN=${CERT_NAME}`, '-addext', `subjectAltName=DNS:${CERT_NAME}`,
      '-keyout', keyPath, '-out', certPath,
    ],
    { stdio: 'ignore', timeout: 30_000 },
  );
  certCache = { dir, key: fs.readFileSync(keyPath), cert: fs.readFileSync(certPath), certPath };
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return certCache;
}

interface Core {
  port: number;
  hits: number;
  accepted: number;
  /** Requests seen per connection (mode dropReused). */
  perSocket: WeakMap<net.Socket, number>;
  sockets: Set<net.Socket>;
  requests: SeenRequest[];
  mode: BackendMode;
  /** Extra headers on every 200 'ok' answer (e.g. X-Load for load feedback). */
  headers: Record<string, string>;
  peers: Map<string, number>;
  hitsFrom: Map<string, number>;
  refused: Set<string>;
}

/** 127.0.0.1 for an IPv4-mapped '::ffff:127.0.0.1' (a dual-stack listener's view). */
function peerAddress(socket: net.Socket): string {
  const a = socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') && net.isIPv4(a.slice(7)) ? a.slice(7) : a;
}

function countFrom(map: Map<string, number>, address: string): void {
  map.set(address, (map.get(address) ?? 0) + 1);
}

function track(core: Core, server: net.Server): void {
  server.on('connection', (socket: net.Socket) => {
    core.accepted++;
    const from = peerAddress(socket);
    countFrom(core.peers, from);
    socket.on('error', () => {}); // clients that reset or go away are expected
    if (core.refused.has(from)) {
      socket.resetAndDestroy();
      return;
    }
    core.sockets.add(socket);
    socket.once('close', () => core.sockets.delete(socket));
  });
}

function handler(core: Core, secure: boolean): http.RequestListener {
  let flip = 0;
  return (req, res) => {
    core.hits++;
    const from = peerAddress(req.socket);
    countFrom(core.hitsFrom, from);
    core.requests.push({
      at: performance.now(),
      from,
      method: req.method ?? '',
      url: req.url ?? '',
      host: req.headers.host,
      userAgent: req.headers['user-agent'],
      servername: secure ? ((req.socket as TLSSocket).servername || undefined) : undefined,
      headers: req.headers,
    });
    if (core.requests.length > 100) core.requests.shift();
    res.on('error', () => {});
    const onSocket = (core.perSocket.get(req.socket) ?? 0) + 1;
    core.perSocket.set(req.socket, onSocket);
    if (req.url === '/elsewhere') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('OK body');
      return;
    }
    switch (core.mode) {
      case 'ok':
        res.writeHead(200, { 'content-type': 'text/plain', ...core.headers }).end('OK body');
        return;
      case 'status500':
        res.writeHead(500, { 'content-type': 'text/plain' }).end('error');
        return;
      case 'wrongBody':
        res.writeHead(200, { 'content-type': 'text/plain' }).end('maintenance page');
        return;
      case 'hang':
        return;
      case 'stallBody':
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' });
        res.write('OK');
        return;
      case 'dropReused':
        if (onSocket > 1) {
          req.socket.destroy();
          return;
        }
        res.writeHead(200, { 'content-type': 'text/plain' }).end('OK body');
        return;
      case 'reset':
        req.socket.resetAndDestroy();
        return;
      case 'flap': {
        const ok = flip++ % 2 === 0;
        res.writeHead(ok ? 200 : 500, { 'content-type': 'text/plain' }).end(ok ? 'OK body' : 'error');
        return;
      }
      case 'redirect':
        res.writeHead(302, { location: '/elsewhere' }).end();
        return;
      case 'redirectAway':
        res.writeHead(302, { location: 'http://elsewhere.test/' }).end();
        return;
      case 'big': {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('BEGIN');
        for (let sent = 0; sent < BIG_BODY_BYTES; sent += BIG_CHUNK.length) res.write(BIG_CHUNK);
        res.write('END'); // and never end(): only a reader that stops early can finish
        return;
      }
    }
  };
}

function makeBackend(address: string, core: Core, create: () => net.Server): Backend {
  let server: net.Server | undefined;
  const listen = async (): Promise<void> => {
    const s = create();
    track(core, s);
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen({ host: address, port: core.port, exclusive: true }, () => {
        s.off('error', reject);
        resolve();
      });
    });
    core.port = (s.address() as net.AddressInfo).port;
    server = s;
  };
  const stop = async (): Promise<void> => {
    const s = server;
    server = undefined;
    if (!s) return;
    const closed = new Promise<void>((resolve) => s.close(() => resolve()));
    for (const socket of core.sockets) socket.destroy();
    await closed;
  };
  const backend: Backend = {
    address,
    get port() {
      return core.port;
    },
    get hits() {
      return core.hits;
    },
    get connections() {
      return core.sockets.size;
    },
    get accepted() {
      return core.accepted;
    },
    get requests() {
      return core.requests;
    },
    get peers() {
      return core.peers;
    },
    get hitsFrom() {
      return core.hitsFrom;
    },
    refuseFrom(addresses) {
      core.refused = new Set(addresses);
    },
    setMode(mode) {
      core.mode = mode;
    },
    setHeaders(headers) {
      core.headers = { ...headers };
    },
    stop,
    start: () => (server ? Promise.resolve() : listen()),
    close: stop,
  };
  return backend;
}

export interface BackendOptions {
  /** Default: the next of 127.0.0.11, 127.0.0.12, … */
  address?: string;
  /** Default: an ephemeral port (kept across stop/start). */
  port?: number;
  mode?: BackendMode;
  headers?: Record<string, string>;
}

function newCore(opts: BackendOptions): Core {
  return { port: opts.port ?? 0, hits: 0, accepted: 0, perSocket: new WeakMap(), sockets: new Set(), requests: [], mode: opts.mode ?? 'ok', headers: { ...opts.headers }, peers: new Map(), hitsFrom: new Map(), refused: new Set() };
}

export async function startHttpBackend(opts: BackendOptions = {}): Promise<Backend> {
  const core = newCore(opts);
  const b = makeBackend(opts.address ?? nextLoopback(), core, () => {
    const s = http.createServer({ keepAliveTimeout: 1000 }, handler(core, false));
    s.on('clientError', (_err, socket) => socket.destroy());
    return s;
  });
  await b.start();
  return b;
}

export async function startHttpsBackend(opts: BackendOptions = {}): Promise<HttpsBackend> {
  const { key, cert, certPath } = selfSignedCert();
  const core = newCore(opts);
  const b = makeBackend(opts.address ?? nextLoopback(), core, () => {
    const s = https.createServer({ key, cert, keepAliveTimeout: 1000 }, handler(core, true));
    s.on('clientError', (_err, socket) => socket.destroy());
    s.on('tlsClientError', (_err, socket) => socket.destroy()); // clients rejecting our self-signed certificate
    return s;
  });
  await b.start();
  return Object.assign(b, { caPath: certPath, certName: CERT_NAME });
}

/** A plain TCP listener: counts accepted connections as hits and leaves them open until the client goes. */
export async function startTcpBackend(opts: BackendOptions = {}): Promise<Backend> {
  const core = newCore(opts);
  const b = makeBackend(opts.address ?? nextLoopback(), core, () => {
    const s = net.createServer((socket) => {
      // This listener runs before track()'s, which resets a refused connection.
      if (core.refused.has(peerAddress(socket))) return;
      core.hits++;
      countFrom(core.hitsFrom, peerAddress(socket));
      socket.on('end', () => socket.end());
    });
    return s;
  });
  await b.start();
  return b;
}

/** Polls `cond` every 10 ms until it holds; throws after `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * The client population behind one resolver, as a child process of the
 * resolver farm (resolver-farm.ts): `loops` clients, each of which asks its
 * resolver for the name (a real DNS query over UDP, like an OS stub with no
 * cache of its own), connects to the FIRST address of the answer, makes one
 * HTTP request, pauses, and repeats. Bounded by a deadline and a request
 * count; the farm also stops it by PID.
 *
 *   node test/support/farm-clients.ts '{"resolver":{"host":"127.0.0.1","port":5301},"name":"www.farm.test",
 *     "backends":{"127.0.0.21":8081},"loops":12,"pauseMs":100,"durationMs":30000,"maxRequests":20000,"seed":1}'
 *
 * Prints one JSON line when it ends (deadline, count, or SIGTERM): requests
 * sent, errors, and how many requests went to each first address.
 */
import http from 'node:http';
import { addresses, udpQuery } from './dnsclient.ts';
import { prng } from './rawdns.ts';

export interface ClientsConfig {
  resolver: { host: string; port: number };
  name: string;
  /** HTTP port of each backend address. */
  backends: Record<string, number>;
  loops: number;
  /** Mean pause between a client's requests; each pause is drawn from [0.5, 1.5) × pauseMs. */
  pauseMs: number;
  durationMs: number;
  /** Over all loops of this process. */
  maxRequests: number;
  seed: number;
}

export interface ClientsReport {
  requests: number;
  dnsErrors: number;
  httpErrors: number;
  /** Requests per first address. */
  byFirst: Record<string, number>;
}

const config = JSON.parse(process.argv[2] ?? '') as ClientsConfig;
const report: ClientsReport = { requests: 0, dnsErrors: 0, httpErrors: 0, byFirst: {} };
const deadline = Date.now() + config.durationMs;
let stopping = false;
// Keep-alive like a browser: the connection is reused while the first address stays the same.
const agent = new http.Agent({ keepAlive: true, maxSockets: config.loops });

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const done = () => stopping || Date.now() >= deadline || report.requests >= config.maxRequests;

function get(address: string, port: number): Promise<void> {
  return new Promise((resolve) => {
    const req = http.get({ host: address, port, path: '/', agent, timeout: 2000 }, (res) => {
      res.resume();
      res.once('end', () => resolve());
      res.once('error', () => resolve());
    });
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', () => {
      report.httpErrors++;
      resolve();
    });
  });
}

async function loop(index: number): Promise<void> {
  const random = prng(config.seed * 1000 + index);
  // Clients do not start in lockstep.
  await sleep(random() * config.pauseMs);
  while (!done()) {
    let first: string | undefined;
    try {
      const { packet } = await udpQuery(config.resolver.port, config.name, { host: config.resolver.host, timeoutMs: 1000 });
      first = addresses(packet)[0];
    } catch {
      // no answer within the bound: count it and try again after the pause
    }
    const port = first === undefined ? undefined : config.backends[first];
    if (first === undefined || port === undefined) report.dnsErrors++;
    else {
      report.requests++;
      report.byFirst[first] = (report.byFirst[first] ?? 0) + 1;
      await get(first, port);
    }
    await sleep(config.pauseMs * (0.5 + random()));
  }
}

function finish(): void {
  agent.destroy();
  process.stdout.write(`${JSON.stringify(report)}\n`, () => process.exit(0));
}

process.once('SIGTERM', () => {
  stopping = true;
  finish();
});

await Promise.all(Array.from({ length: config.loops }, (_, i) => loop(i)));
finish();

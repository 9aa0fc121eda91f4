/** Starts the real rrdns server in-process on an ephemeral loopback port, over a temp zones dir. */
import fs from 'node:fs';
import path from 'node:path';
import { parseConfig, type ServerConfigInput } from '../../src/config/schema.ts';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/observability/log.ts';
import { RrdnsServer } from '../../src/server/server.ts';
import { tempDir } from './spawn.ts';

export interface TestServer {
  server: RrdnsServer;
  port: number;
  dir: string;
  close(): Promise<void>;
}

export function writeZones(files: Record<string, string>): string {
  const dir = tempDir('zones');
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return dir;
}

export async function startTestServer(files: Record<string, string>, overrides: Partial<ServerConfigInput> = {}, logger = createLogger('silent')): Promise<TestServer> {
  const dir = writeZones(files);
  // The admin listener is off unless a test asks for it (tests run in parallel; 8053 is one port).
  // Reload-on-change is off unless a test asks for it: tests that edit zones say when to reload.
  // Rate limiting is off and state is kept in memory unless a test asks (see spawn.ts startRrdns).
  // One UDP thread unless a test asks: `auto` would give one per core on a larger machine, and
  // tests about threads say how many they want.
  const config = parseConfig({ zonesDir: dir, listen: ['127.0.0.1:0'], logLevel: 'silent', admin: { listen: 'off' }, watch: { enabled: false }, rrl: { mode: 'off' }, stateDir: 'off', udpThreads: 1, ...overrides });
  const server = new RrdnsServer(config, { logger });
  await server.start();
  return {
    server,
    port: server.addresses[0]!.port,
    dir,
    async close() {
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A logger whose JSON lines land in `lines`, for tests that check what is logged. */
export function captureLogger(level = 'info') {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger(level, stream), lines };
}

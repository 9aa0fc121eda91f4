/** Starts the real rrdns server in-process on an ephemeral loopback port, over a temp zones dir. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfig, type ServerConfigInput } from '../../src/config/schema.ts';
import { createLogger } from '../../src/observability/log.ts';
import { RrdnsServer } from '../../src/server/server.ts';

export interface TestServer {
  server: RrdnsServer;
  port: number;
  dir: string;
  close(): Promise<void>;
}

export function writeZones(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrdns-zones-'));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return dir;
}

export async function startTestServer(files: Record<string, string>, overrides: Partial<ServerConfigInput> = {}): Promise<TestServer> {
  const dir = writeZones(files);
  const config = parseConfig({ zonesDir: dir, listen: ['127.0.0.1:0'], logLevel: 'silent', ...overrides });
  const server = new RrdnsServer(config, { logger: createLogger('silent') });
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

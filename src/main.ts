#!/usr/bin/env node
/**
 * The command line: the only module that reads argv and the environment,
 * installs signal handlers or calls process.exit.
 *
 *   rrdns serve [--zones DIR] [--listen HOST:PORT]... [--log-level LEVEL] [--identity TEXT]
 *   rrdns check [DIR]
 *
 * Environment: RRDNS_ZONES, RRDNS_LISTEN (comma-separated), RRDNS_LOG_LEVEL, RRDNS_IDENTITY.
 * Flags win over the environment.
 */
import { parseArgs } from 'node:util';
import { formatIssue, RrdnsError, ZoneValidationError } from './errors.ts';
import { parseConfig } from './config/schema.ts';
import { loadZoneDir } from './zone/load.ts';
import { nameToText } from './zone/name.ts';
import { RrdnsServer } from './server/server.ts';
import { failoverEstimates } from './server/pools.ts';

const SHUTDOWN_GRACE_MS = 5000;

const USAGE = `usage:
  rrdns serve [--zones DIR] [--listen HOST:PORT]... [--log-level LEVEL] [--identity TEXT]
              [--admin HOST:PORT|off] [--admin-allow-remote]
  rrdns check [DIR]

  --zones DIR          zone files to serve (env RRDNS_ZONES; default ./zones)
  --listen HOST:PORT   UDP+TCP address, repeatable; IPv6 as [::1]:5353
                       (env RRDNS_LISTEN, comma-separated; default 127.0.0.1:5353)
  --log-level LEVEL    fatal|error|warn|info|debug|trace|silent (env RRDNS_LOG_LEVEL; default info)
  --identity TEXT      answer CHAOS TXT id.server/hostname.bind with TEXT (env RRDNS_IDENTITY)
  --admin HOST:PORT    admin HTTP API, metrics and status page, or 'off'
                       (env RRDNS_ADMIN; default 127.0.0.1:8053)
  --admin-allow-remote allow the admin API on a non-loopback address (env RRDNS_ADMIN_ALLOW_REMOTE=1)
`;

function fail(message: string, code = 1): never {
  process.stderr.write(message.endsWith('\n') ? message : message + '\n');
  process.exit(code);
}

function check(dir: string): never {
  let result;
  try {
    result = loadZoneDir(dir);
  } catch (e) {
    fail(`rrdns check: ${(e as Error).message}`);
  }
  if (result.issues.length > 0) {
    fail(`rrdns check: ${result.issues.length} error${result.issues.length === 1 ? '' : 's'} in ${dir}\n` + result.issues.map((i) => '  ' + formatIssue(i)).join('\n'));
  }
  for (const z of result.zones) {
    process.stdout.write(`ok ${nameToText(z.origin)} (${z.source}): ${z.nodes.size} names, negative TTL ${z.negativeTtl}s\n`);
    for (const f of failoverEstimates(z)) {
      process.stdout.write(
        `  pool ${f.name} ${f.type}: ${f.primaries} primar${f.primaries === 1 ? 'y' : 'ies'}, ${f.standby} standby; ${f.check}\n` +
          `    worst case before clients stop getting a dead address: ${f.worstCaseMs / 1000}s = detection ${f.detectionMs / 1000}s (interval x fall + timeout) + TTL ${f.ttl}s\n`,
      );
    }
  }
  process.stdout.write(`rrdns check: ${result.zones.length} zone${result.zones.length === 1 ? '' : 's'} valid\n`);
  process.exit(0);
}

async function serve(values: {
  zones?: string;
  listen?: string[];
  'log-level'?: string;
  identity?: string;
  admin?: string;
  'admin-allow-remote'?: boolean;
}): Promise<void> {
  const env = process.env;
  let config;
  try {
    config = parseConfig({
      zonesDir: values.zones ?? env.RRDNS_ZONES ?? 'zones',
      listen: values.listen ?? (env.RRDNS_LISTEN ? env.RRDNS_LISTEN.split(',').map((s) => s.trim()).filter(Boolean) : ['127.0.0.1:5353']),
      logLevel: values['log-level'] ?? env.RRDNS_LOG_LEVEL ?? 'info',
      identity: values.identity ?? env.RRDNS_IDENTITY,
      admin: {
        listen: values.admin ?? env.RRDNS_ADMIN ?? '127.0.0.1:8053',
        allowRemote: values['admin-allow-remote'] ?? env.RRDNS_ADMIN_ALLOW_REMOTE === '1',
      },
    });
  } catch (e) {
    fail(`rrdns: ${(e as Error).message}`, 2);
  }
  const server = new RrdnsServer(config);
  try {
    await server.start();
  } catch (e) {
    if (e instanceof ZoneValidationError) {
      server.log.fatal({ issues: e.issues.map(formatIssue) }, 'zones invalid; not serving');
      server.log.flush();
      fail(`rrdns: ${e.message}`);
    }
    server.log.fatal({ err: e }, 'start failed');
    server.log.flush();
    fail(`rrdns: ${e instanceof RrdnsError ? e.message : String(e)}`);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    // Bounded: a shutdown that hangs must not keep the port.
    setTimeout(() => process.exit(1), SHUTDOWN_GRACE_MS).unref();
    const closing = server.close();
    try {
      server.log.info({ signal }, 'shutting down');
    } catch {
      // Logging is best effort once stdout may be gone.
    }
    closing.then(
      () => {
        server.log.flush();
        process.exit(0);
      },
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => void server.reload());
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === 'check') {
    const { positionals, values } = parseArgs({ args: rest, allowPositionals: true, options: { zones: { type: 'string' } } });
    check(positionals[0] ?? values.zones ?? process.env.RRDNS_ZONES ?? 'zones');
  }
  if (command === 'serve' || command === undefined || command.startsWith('--')) {
    let parsed;
    try {
      parsed = parseArgs({
        args: command === 'serve' ? rest : argv,
        options: {
          zones: { type: 'string' },
          listen: { type: 'string', multiple: true },
          'log-level': { type: 'string' },
          identity: { type: 'string' },
          admin: { type: 'string' },
          'admin-allow-remote': { type: 'boolean' },
        },
      });
    } catch (e) {
      fail(`rrdns: ${(e as Error).message}\n${USAGE}`, 2);
    }
    await serve(parsed.values);
    return;
  }
  if (command === 'help' || command === '-h' || command === '--help') {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  fail(`rrdns: unknown command "${command}"\n${USAGE}`, 2);
}

await main(process.argv.slice(2));

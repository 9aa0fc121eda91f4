/**
 * What loading rrdns's modules pulls in, in a fresh Node process: the wire
 * format takes dns2's packet module without its servers and clients (no
 * node:http2, node:https), the metrics take prom-client without its
 * Pushgateway (no node:https, node:zlib), both are the very modules the
 * packages' entry points export, and the zone reader loads the yaml package
 * only once a native zone file is to be read. Each of these was megabytes of
 * every process's memory (issue 11: 10,000 zones in 100 MB).
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const src = (p: string) => pathToFileURL(path.resolve(import.meta.dirname, '../../src', p)).href;

const SCRIPT = `
import { registerHooks } from 'node:module';
const urls = [];
registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); urls.push(r.url); return r; } });
const builtinsBefore = new Set(process.moduleLoadList);
const load = await import(${JSON.stringify(src('zone/load.ts'))});
await import(${JSON.stringify(src('wire/rdata.ts'))});
await import(${JSON.stringify(src('observability/metrics.ts'))});
const ours = await import(${JSON.stringify(src('wire/dns2-packet.ts'))});
const prom = await import(${JSON.stringify(src('observability/prom-client.ts'))});
const builtins = process.moduleLoadList.filter((m) => !builtinsBefore.has(m)).map((m) => m.replace(/^NativeModule /, ''));
const yamlBefore = urls.some((u) => u.includes('/node_modules/yaml/'));
const parserBefore = load.nativeParserLoaded();
await load.loadNativeParser();
const yamlAfter = urls.some((u) => u.includes('/node_modules/yaml/'));
const dns2 = await import('dns2');
const promClient = await import('prom-client');
console.log(JSON.stringify({
  builtins, yamlBefore, parserBefore, yamlAfter, parserAfter: load.nativeParserLoaded(),
  samePacket: ours.Packet === dns2.Packet,
  samePromClient: prom.Registry === promClient.Registry && prom.Counter === promClient.Counter && prom.Gauge === promClient.Gauge && prom.Histogram === promClient.Histogram && prom.collectDefaultMetrics === promClient.collectDefaultMetrics,
}));
`;

describe('modules loaded', () => {
  const run = () => JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', SCRIPT], { encoding: 'utf8', timeout: 60_000 }).trim().split('\n').at(-1)!);

  it('dns2 and prom-client without their servers, clients and push gateway; yaml only when a native zone is read', () => {
    const r = run();
    for (const m of ['http2', 'https', 'zlib', 'internal/http2/core']) expect(r.builtins, m).not.toContain(m);
    expect(r.samePacket).toBe(true);
    expect(r.samePromClient).toBe(true);
    expect(r.yamlBefore).toBe(false);
    expect(r.parserBefore).toBe(false);
    expect(r.yamlAfter).toBe(true);
    expect(r.parserAfter).toBe(true);
  }, 90_000);
});

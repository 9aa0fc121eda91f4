/**
 * The batched UDP path (native/udp_batch.c through src/wire/udp-batch.ts)
 * against node:dgram (src/wire/udp.ts), issue 11 point 2:
 * - the same bytes: two servers over the same zones, one per path, get the
 *   same datagrams in the same order (the differential corpus, hostile
 *   mutations of it, EDNS/cookie/ECS variants) and must answer each with
 *   identical octets, or both not at all;
 * - the fallback: an addon that does not load means dgram, said at start;
 *   `--udp-io native` without it is a clear start-up error;
 * - the error paths, driven through the addon's fault injection (loopback
 *   cannot fill a send buffer or refuse a send on demand): EAGAIN queues
 *   the batch and sends it when the socket is writable (nothing dropped),
 *   ENOBUFS and per-message errors drop that one answer and are counted by
 *   errno; a handler that throws costs its datagram only; close() during a
 *   batch; ArrayBuffers detached under the socket; a worker thread that
 *   holds a socket terminated under load.
 */
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeQuery, zoneFileName, type FuzzQuery } from '../support/diff-compare.ts';
import { generateBatch } from '../support/zone-gen.ts';
import { ednsOption, prng, rawQuery } from '../support/rawdns.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { startRrdns, tempDir, REPO_ROOT } from '../support/spawn.ts';
import { dig } from '../support/dig.ts';
import { batchBinding, BatchUdpListener } from '../../src/wire/udp-batch.ts';
import { udpPath, type DatagramHandler } from '../../src/wire/udp.ts';
import type { TransportHooks } from '../../src/wire/transport.ts';

const binding = batchBinding();
const unavailable = 'error' in binding ? binding.error : undefined;
if (unavailable) console.warn(`[rrdns tests] skipping the batched UDP tests: ${unavailable}`);

/** A sentinel after every datagram: its reply says every reply to the datagram has arrived (loopback keeps order). */
const SENTINEL_ID = 0xffff;
const SENTINEL = rawQuery('version.bind', { id: SENTINEL_ID, qclass: 3, qtype: 16 });

/** Sends `d` then the sentinel from `socket` to `port`; resolves with the replies that came before the sentinel's. */
function ask(socket: dgram.Socket, port: number, d: Buffer): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const got: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.off('message', onMessage);
      reject(new Error(`no reply to the sentinel from port ${port} within 5 s (after ${d.toString('hex')})`));
    }, 5000);
    const onMessage = (m: Buffer) => {
      if (m.length >= 12 && m.readUInt16BE(0) === SENTINEL_ID && m.subarray(12).includes(Buffer.from('version'))) {
        clearTimeout(timer);
        socket.off('message', onMessage);
        resolve(got);
      } else got.push(m);
    };
    socket.on('message', onMessage);
    socket.send(d, port, '127.0.0.1');
    socket.send(SENTINEL, port, '127.0.0.1');
  });
}

/** The server cookie's timestamp and hash (RFC 9018 §4) differ when the two answers straddle a second: compared apart. */
function cookieMasked(m: Buffer): { bytes: Buffer; masked: boolean } {
  const i = m.indexOf(Buffer.from([0x00, 0x0a, 0x00, 0x18]));
  if (i < 0 || i + 4 + 24 > m.length) return { bytes: m, masked: false };
  const copy = Buffer.from(m);
  copy.fill(0, i + 4 + 8 + 4, i + 4 + 24);
  return { bytes: copy, masked: true };
}

function corpus(): { files: Record<string, string>; datagrams: Buffer[] } {
  const batch = generateBatch(20261203, 0, 120, 40);
  const files: Record<string, string> = Object.fromEntries(batch.zones.map((z) => [zoneFileName(z.origin), z.text]));
  files['example.test.yaml'] = fs.readFileSync(path.join(REPO_ROOT, 'zones', 'example.test.yaml'), 'utf8');
  const rand = prng(0x11c0de);
  const int = (n: number) => Math.floor(rand() * n);
  const datagrams: Buffer[] = [];
  let id = 1;
  const next = () => id++ % 0xfff0;
  // The generated queries, over UDP, with EDNS sizes that truncate some answers.
  const sizes = [null, 512, 1232, 4096, 600];
  for (const q of batch.queries) datagrams.push(encodeQuery({ ...q, transport: 'udp', edns: sizes[int(sizes.length)]! } satisfies FuzzQuery, next()));
  // The rotating names, many times each (rotation must step the same way on both paths).
  for (let i = 0; i < 60; i++) for (const n of ['www.example.test', 'api.example.test']) datagrams.push(rawQuery(n, { id: next(), qtype: i % 2 ? 28 : 1, rd: true }));
  // EDNS variants: a client cookie, client + bogus server cookie, a malformed cookie, ECS valid and malformed, version 1, DO.
  const ecs = (family: number, src: number, addr: number[]) => ednsOption(8, Buffer.from([0, family, src, 0, ...addr]));
  const options = [
    ednsOption(10, Buffer.from('0123456789abcdef', 'hex')),
    ednsOption(10, Buffer.from('0123456789abcdef' + '01000000aabbccdd0011223344556677', 'hex')),
    ednsOption(10, Buffer.from('0123', 'hex')),
    ecs(1, 24, [198, 51, 100]),
    ecs(1, 33, [1, 2, 3, 4, 5]),
    ecs(2, 56, [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0]),
    Buffer.alloc(0),
  ];
  for (const rdata of options)
    for (const name of ['www.example.test', 'example.test', 'nope.example.test', 'example.org'])
      for (const version of [0, 1]) datagrams.push(rawQuery(name, { id: next(), opt: { udpSize: 1232, version, do: version === 0, rdata } }));
  // Hostile: bit flips and cuts of the queries so far, and plain noise (answered FORMERR, or dropped by both).
  const valid = datagrams.slice();
  for (let i = 0; i < 3000; i++) {
    let p = Buffer.from(valid[int(valid.length)]!);
    for (let flips = 1 + int(4); flips > 0; flips--) {
      const bit = 16 + int(Math.max(1, (p.length - 2) * 8));
      if (bit >> 3 < p.length) p[bit >> 3]! ^= 0x80 >> (bit & 7);
    }
    if (rand() < 0.15) p = p.subarray(0, int(p.length));
    if (p.length >= 2) p.writeUInt16BE(next(), 0);
    datagrams.push(p);
  }
  for (let i = 0; i < 1000; i++) {
    const p = Buffer.from(Array.from({ length: int(rand() < 0.3 ? 14 : 300) }, () => int(256)));
    if (p.length >= 2) p.writeUInt16BE(next(), 0);
    datagrams.push(p);
  }
  // The largest datagrams IPv4 carries (65,507 octets): a valid query with a long tail, and noise.
  const tail = Buffer.alloc(65_507 - 64, 0xab);
  datagrams.push(Buffer.concat([rawQuery('www.example.test', { id: next(), opt: { udpSize: 1232 } }), tail]).subarray(0, 65_507));
  const noise = Buffer.from(Array.from({ length: 65_507 }, () => int(256)));
  noise.writeUInt16BE(next(), 0);
  datagrams.push(noise);
  return { files, datagrams };
}

describe.skipIf(unavailable !== undefined)('batched UDP (native) and node:dgram answer the same bytes', () => {
  let native: TestServer;
  let plain: TestServer;
  let socket: dgram.Socket;
  const { files, datagrams } = corpus();
  beforeAll(async () => {
    const secretFile = path.join(tempDir('cookie-secret'), 'secret');
    fs.writeFileSync(secretFile, '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n');
    const common = { cookies: { enabled: true, secretFile, secretLifetime: 26 * 3600, require: false } };
    [native, plain] = await Promise.all([startTestServer(files, { ...common, udpIo: 'native' }), startTestServer(files, { ...common, udpIo: 'dgram' })]);
    socket = dgram.createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  });
  afterAll(async () => {
    socket?.close();
    await Promise.all([native?.close(), plain?.close()]);
  });

  it(`over ${datagrams.length} datagrams: the corpus, rotation, EDNS options, hostile mutations`, { timeout: 120_000 }, async () => {
    expect(native.server.udpIoPath).toBe('native');
    expect(plain.server.udpIoPath).toBe('dgram');
    const differences: string[] = [];
    let answered = 0;
    let dropped = 0;
    let masked = 0;
    for (const d of datagrams) {
      // One at a time, each to both servers: rotation steps in the same order on both.
      const a = await ask(socket, native.port, d);
      const b = await ask(socket, plain.port, d);
      if (a.length === 0 && b.length === 0) dropped++;
      else answered++;
      const sameCount = a.length === b.length;
      const same = sameCount && a.every((m, i) => {
        const x = cookieMasked(m);
        const y = cookieMasked(b[i]!);
        if (x.masked && !m.equals(b[i]!)) masked++;
        return x.bytes.equals(y.bytes);
      });
      if (!same && differences.length < 10) differences.push(`query ${d.toString('hex')}\n  native ${a.map((m) => m.toString('hex')).join(' | ') || '(none)'}\n  dgram  ${b.map((m) => m.toString('hex')).join(' | ') || '(none)'}`);
    }
    console.log(`[udp-native] ${datagrams.length} datagrams: ${answered} answered, ${dropped} dropped by both, ${masked} cookie timestamps straddled a second`);
    expect(differences).toEqual([]);
    expect(answered).toBeGreaterThan(datagrams.length * 0.8);
    expect(dropped).toBeGreaterThan(0);
    // The server cookie is compared in full almost always: a second boundary falls between the two asks rarely.
    expect(masked).toBeLessThan(20);
  });
});

describe('which UDP path serves, and the fallback', () => {
  it('an addon that does not load means node:dgram, and the start-up log says so and why', { timeout: 60_000 }, async () => {
    const zonesDir = tempDir('zones');
    fs.copyFileSync(path.join(REPO_ROOT, 'zones', 'example.test.yaml'), path.join(zonesDir, 'example.test.yaml'));
    const missing = path.join(tempDir('no-addon'), 'udp_batch.node');
    const proc = await startRrdns({ zonesDir, env: { ...process.env, RRDNS_UDP_ADDON: missing, RRDNS_UDP_IO: undefined } });
    try {
      const start = proc.logs.find((l) => l.msg === 'rrdns listening') as { udpIo?: { path: string; why: string } } | undefined;
      expect(start?.udpIo?.path).toBe('dgram');
      expect(start?.udpIo?.why).toContain('did not load');
      expect(start?.udpIo?.why).toContain('build:native');
      const r = await dig(proc.port, ['www.example.test', 'A']);
      expect(r.answer.length).toBe(4);
    } finally {
      await proc.stop();
    }
  });

  it.skipIf(unavailable !== undefined)('with the addon, the start-up log names the native path', { timeout: 60_000 }, async () => {
    const zonesDir = tempDir('zones');
    fs.copyFileSync(path.join(REPO_ROOT, 'zones', 'example.test.yaml'), path.join(zonesDir, 'example.test.yaml'));
    const proc = await startRrdns({ zonesDir, args: ['--udp-io', 'native'] });
    try {
      const start = proc.logs.find((l) => l.msg === 'rrdns listening') as { udpIo?: { path: string; why: string } } | undefined;
      expect(start?.udpIo?.path).toBe('native');
      expect((await dig(proc.port, ['www.example.test', 'A'])).answer.length).toBe(4);
    } finally {
      await proc.stop();
    }
  });

  it('--udp-io native without a loadable addon is a start-up error that names the file', { timeout: 60_000 }, async () => {
    const zonesDir = tempDir('zones');
    fs.copyFileSync(path.join(REPO_ROOT, 'zones', 'example.test.yaml'), path.join(zonesDir, 'example.test.yaml'));
    const missing = path.join(tempDir('no-addon'), 'udp_batch.node');
    await expect(startRrdns({ zonesDir, args: ['--udp-io', 'native'], env: { ...process.env, RRDNS_UDP_ADDON: missing }, startTimeoutMs: 20_000 })).rejects.toThrow(/batched UDP path was asked for but is not available[\s\S]*udp_batch\.node/);
  });

  it('the install script never fails the install: without a working compiler it says rrdns will use node:dgram', { timeout: 120_000 }, () => {
    // A copy of native/ (the script builds next to itself), so the suite's own addon is never touched.
    const dir = path.join(tempDir('native-build'), 'native');
    fs.mkdirSync(dir);
    for (const f of ['udp_batch.c', 'memory.c', 'binding.gyp', 'build.mjs']) fs.copyFileSync(path.join(REPO_ROOT, 'native', f), path.join(dir, f));
    const run = (env: NodeJS.ProcessEnv) => spawnSync(process.execPath, [path.join(dir, 'build.mjs')], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 100_000 });
    const broken = run({ CC: '/bin/false', CXX: '/bin/false' });
    expect(broken.status).toBe(0);
    expect(broken.stderr).toContain('build failed');
    expect(broken.stderr).toContain('rrdns will use node:dgram');
    expect(fs.existsSync(path.join(dir, 'build', 'Release', 'udp_batch.node'))).toBe(false);
    const off = run({ RRDNS_NATIVE: 'off' });
    expect(off.status).toBe(0);
    expect(off.stderr).toContain('RRDNS_NATIVE=off');
  });

  it('RRDNS_UDP_IO=dgram switches auto to dgram; an explicit choice wins over it', () => {
    const saved = process.env.RRDNS_UDP_IO;
    try {
      process.env.RRDNS_UDP_IO = 'dgram';
      expect(udpPath('auto')).toEqual({ path: 'dgram', why: 'RRDNS_UDP_IO=dgram' });
      expect(udpPath('dgram').path).toBe('dgram');
      if (!unavailable) expect(udpPath('native').path).toBe('native');
    } finally {
      if (saved === undefined) delete process.env.RRDNS_UDP_IO;
      else process.env.RRDNS_UDP_IO = saved;
    }
  });
});

/** A listener answering every datagram with its own bytes (QR set), counting faults the way the server's metrics do. */
function echoListener(handler?: DatagramHandler) {
  const sendErrors: Record<string, number> = {};
  let handlerErrors = 0;
  const reported: string[] = [];
  const hooks: TransportHooks = {
    sendError: (_t, code, n = 1) => void (sendErrors[code] = (sendErrors[code] ?? 0) + n),
    handlerError: (_t, n = 1) => void (handlerErrors += n),
  };
  const echo: DatagramHandler = (msg, length, _view, _peer, out, at) => {
    msg.copy(out, at, 0, length);
    out[at + 2]! |= 0x80;
    return length;
  };
  const listener = new BatchUdpListener(binding as Exclude<typeof binding, { error: string }>, '127.0.0.1', 0, handler ?? echo, (e: unknown, where: string) => void reported.push(`${where}: ${(e as Error).message ?? String(e)}`), { hooks });
  return { listener, sendErrors, reported, handlerErrors: () => handlerErrors };
}

/** Sends `n` datagrams (IDs 1..n) at once and collects replies until `expect` arrived or `ms` passed. */
async function burst(port: number, n: number, expectReplies: number, ms = 3000): Promise<Set<number>> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const got = new Set<number>();
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    s.on('message', (m) => {
      got.add(m.readUInt16BE(0));
      if (got.size >= expectReplies) {
        clearTimeout(timer);
        resolve();
      }
    });
    for (let i = 1; i <= n; i++) s.send(rawQuery('www.example.test', { id: i }), port, '127.0.0.1');
  });
  s.close();
  return got;
}

describe.skipIf(unavailable !== undefined)('batched UDP error paths', () => {
  it('EAGAIN (send buffer full): the batch stays queued and goes out once the socket is writable; nothing dropped', async () => {
    const e = echoListener();
    try {
      e.listener.injectSendErrors('EAGAIN', 3);
      const got = await burst(e.listener.port, 20, 20);
      expect(got.size).toBe(20);
      const c = e.listener.counts();
      expect(c.sendWaits).toBe(3);
      expect(c.dropped).toBe(0);
      expect(e.sendErrors).toEqual({});
    } finally {
      await e.listener.close();
    }
  });

  it('ENOBUFS and a per-message refusal (EPERM) drop that one answer each, counted by errno; the rest are sent', async () => {
    const e = echoListener();
    try {
      e.listener.injectSendErrors('ENOBUFS', 1);
      const first = await burst(e.listener.port, 10, 10, 1500);
      e.listener.injectSendErrors('EPERM', 2);
      const second = await burst(e.listener.port, 10, 10, 1500);
      expect(first.size).toBe(9);
      expect(second.size).toBe(8);
      const c = e.listener.counts();
      expect(c.dropped).toBe(3);
      expect(e.sendErrors).toEqual({ ENOBUFS: 1, EPERM: 2 });
      expect(e.reported.some((m) => m.includes('ENOBUFS'))).toBe(true);
    } finally {
      await e.listener.close();
    }
  });

  it('a handler that throws costs its own datagram only', async () => {
    const e = echoListener((msg, length, _v, _p, out, at) => {
      if (msg.readUInt16BE(0) % 5 === 0) throw new Error('boom');
      msg.copy(out, at, 0, length);
      return length;
    });
    try {
      const got = await burst(e.listener.port, 20, 16);
      expect([...got].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 6, 7, 8, 9, 11, 12, 13, 14, 16, 17, 18, 19]);
      expect(e.handlerErrors()).toBe(4);
    } finally {
      await e.listener.close();
    }
  });

  it('close() from inside a batch: that batch is not sent, the socket closes after it, the port is free again', async () => {
    let listener: BatchUdpListener | undefined;
    let calls = 0;
    const e = echoListener((msg, length, _v, _p, out, at) => {
      calls++;
      void listener!.close();
      msg.copy(out, at, 0, length);
      return length;
    });
    listener = e.listener;
    const port = listener.port;
    const got = await burst(port, 5, 1, 800);
    await listener.close();
    expect(got.size).toBe(0);
    expect(calls).toBeGreaterThan(0);
    // The port can be bound again (no SO_REUSEPORT): the descriptor really is closed.
    const again = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.bind(port, '127.0.0.1', () => resolve());
    });
    again.close();
  });

  it('ArrayBuffers detached under the socket: it stops reading and reports ERR_BUFFER_DETACHED, the process goes on', async () => {
    const b = binding as Exclude<typeof binding, { error: string }>;
    const recv = new ArrayBuffer(4 * 2048);
    const send = new ArrayBuffer(4 * 1280);
    const meta = new ArrayBuffer(4 * b.metaStride * 4);
    const calls: number[] = [];
    const handle = b.open('127.0.0.1', 0, false, 65536, 65536, recv, send, meta, 4, 2048, 1280, (n) => void calls.push(n));
    const port = b.port(handle);
    // A transfer detaches the original, as a postMessage to another thread would.
    structuredClone(recv, { transfer: [recv] });
    await burst(port, 3, 1, 500);
    expect(calls).toEqual([-1]);
    b.close(handle);
  });

  it('a worker thread holding batched sockets is terminated under load: the process survives, the port is freed', { timeout: 30_000 }, async () => {
    const dir = tempDir('udp-worker');
    const script = path.join(dir, 'worker.mjs');
    const addon = path.join(REPO_ROOT, 'native', 'build', 'Release', 'udp_batch.node');
    fs.writeFileSync(
      script,
      `import { createRequire } from 'node:module';
       import { parentPort } from 'node:worker_threads';
       const b = createRequire(import.meta.url)(${JSON.stringify(addon)});
       const recv = new ArrayBuffer(64 * 2048), send = new ArrayBuffer(64 * 1280), meta = new ArrayBuffer(64 * b.metaStride * 4);
       const out = new Uint32Array(meta), bytes = new Uint8Array(recv), answers = new Uint8Array(send);
       const h = b.open('127.0.0.1', 0, false, 1 << 20, 1 << 20, recv, send, meta, 64, 2048, 1280, (n) => {
         for (let i = 0; i < n; i++) { const len = out[i * b.metaStride]; answers.set(bytes.subarray(i * 2048, i * 2048 + len), i * 1280); out[i * b.metaStride + 7] = len; }
       });
       parentPort.postMessage(b.port(h));`,
    );
    const worker = new Worker(script);
    const port = await new Promise<number>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    // Answers while alive; then terminated while a flood is in flight.
    expect((await burst(port, 10, 10)).size).toBe(10);
    const flood = dgram.createSocket('udp4');
    for (let i = 0; i < 2000; i++) flood.send(rawQuery('x.test', { id: i & 0xffff }), port, '127.0.0.1');
    await worker.terminate();
    flood.close();
    const again = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.bind(port, '127.0.0.1', () => resolve());
    });
    again.close();
  });
});


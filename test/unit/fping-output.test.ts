/**
 * fping's output as fping 5.1 wrote it (test/fixtures/fping: a loop over
 * loopback, an answering address in a network namespace and silent ones, with
 * a SIGQUIT and a SIGINT summary; and a run with -D timestamps), parsed line
 * by line; and garbage, which is ignored with bounded memory.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LineSplitter, parseFpingError, parseFpingLine } from '../../src/health/icmp/fping-output.ts';

const fixture = (name: string) => fs.readFileSync(path.join(import.meta.dirname, '../fixtures/fping', name));

describe('parseFpingLine over fping 5.1 output', () => {
  const lines = fixture('loop.stdout').toString('latin1').split('\n').filter(Boolean);
  const parsed = lines.map(parseFpingLine);

  it('every stdout line of a loop is a reply or a timeout', () => {
    expect(parsed.every((p) => p !== undefined)).toBe(true);
    expect(parsed.length).toBe(lines.length);
  });

  it('replies: address as given (padding dropped), sequence, round trip; timeouts: address and sequence', () => {
    expect(parsed[0]).toEqual({ kind: 'reply', address: '127.0.0.1', seq: 0, rttMs: 0.046 });
    expect(parsed.find((p) => p?.address === 'fd7e:213:7::2')).toEqual({ kind: 'reply', address: 'fd7e:213:7::2', seq: 0, rttMs: 0.032 });
    expect(parsed.find((p) => p?.address === 'fd7e:213:8::5')).toEqual({ kind: 'timeout', address: 'fd7e:213:8::5', seq: 0 });
    const byAddress = (a: string) => parsed.filter((p) => p?.address === a).map((p) => p!.kind);
    expect(new Set(byAddress('::1'))).toEqual(new Set(['reply']));
    expect(new Set(byAddress('10.213.8.5'))).toEqual(new Set(['timeout']));
    // Sequence numbers count up per address.
    expect(parsed.filter((p) => p?.address === '127.0.0.1').map((p) => p!.seq)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('with -D timestamps the lines parse the same', () => {
    const ts = fixture('loop-timestamps.stdout').toString('latin1').split('\n').filter(Boolean);
    expect(ts.map(parseFpingLine).slice(0, 2)).toEqual([
      { kind: 'reply', address: '127.0.0.1', seq: 0, rttMs: 0.065 },
      { kind: 'reply', address: '::1', seq: 0, rttMs: 0.051 },
    ]);
  });

  const garbage: [string, string][] = [
    ['a summary line', '127.0.0.1     : xmt/rcv/%loss = 6/6/0%, min/avg/max = 0.042/0.054/0.082'],
    ['a SIGQUIT time stamp', '[09:23:47]'],
    ['a duplicate reply', '127.0.0.1 : duplicate for [0], 64 bytes, 0.046 ms'],
    ['a name instead of an address', 'www.example.test : [0], 64 bytes, 0.046 ms (0.046 avg, 0% loss)'],
    ['a cut line', '127.0.0.1     : [0], 64 by'],
    ['an absurd sequence', '127.0.0.1 : [12345678901], 64 bytes, 0.046 ms (0.046 avg, 0% loss)'],
    ['an absurd round trip', '127.0.0.1 : [1], 64 bytes, 1e400 ms (0.046 avg, 0% loss)'],
    ['binary', '\u0000\u00ff\u0001 : [1], \u0007'],
    ['empty', ''],
  ];
  it.each(garbage)('garbage is not an echo: %s', (_n, line) => expect(parseFpingLine(line)).toBeUndefined());
});

describe('parseFpingError over fping 5.1 stderr', () => {
  it('ICMP errors name the target the echo was sent to; the summaries are not errors', () => {
    const lines = fixture('loop.stderr').toString('latin1').split('\n');
    const errors = lines.map(parseFpingError).filter(Boolean);
    expect(errors.length).toBeGreaterThan(0);
    expect(new Set(errors.map((e) => JSON.stringify(e)))).toEqual(new Set([JSON.stringify({ address: '10.213.8.200', message: 'ICMP Host Unreachable from 10.213.7.2' })]));
    expect(lines.filter((l) => l.includes('xmt/rcv')).map(parseFpingError)).toEqual(lines.filter((l) => l.includes('xmt/rcv')).map(() => undefined));
  });
});

describe('LineSplitter', () => {
  const split = (chunks: (string | Buffer)[], max = 64) => {
    const out: string[] = [];
    const s = new LineSplitter(max, (l) => out.push(l));
    for (const c of chunks) s.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : c);
    return { out, dropped: s.dropped };
  };

  it('the real output, fed a byte at a time, gives the same lines as split by newline', () => {
    const bytes = fixture('loop.stdout');
    const chunks = [...bytes].map((b) => Buffer.from([b]));
    expect(split(chunks, 512).out).toEqual(bytes.toString('latin1').split('\n').slice(0, -1));
  });

  it('lines across chunks, CRLF, an unfinished last line held back', () => {
    expect(split(['a', 'b\nc\r\n', 'd'])).toEqual({ out: ['ab', 'c'], dropped: 0 });
  });

  it('an over-long line is dropped whole, the lines around it are kept', () => {
    const long = 'x'.repeat(100);
    expect(split([`ok1\n${long.slice(0, 50)}`, `${long.slice(50)}\nok2\n`])).toEqual({ out: ['ok1', 'ok2'], dropped: 1 });
  });

  it('memory stays bounded under a megabyte without a newline', () => {
    const out: string[] = [];
    const s = new LineSplitter(512, (l) => out.push(l));
    const junk = Buffer.alloc(64 * 1024, 0x41);
    for (let i = 0; i < 16; i++) s.push(junk);
    s.push(Buffer.from('\n127.0.0.1 : [0], 64 bytes, 0.1 ms (0.1 avg, 0% loss)\n'));
    expect(s.dropped).toBe(1);
    expect(out.map(parseFpingLine)).toEqual([{ kind: 'reply', address: '127.0.0.1', seq: 0, rttMs: 0.1 }]);
  });
});

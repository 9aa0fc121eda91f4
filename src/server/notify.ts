/**
 * Outgoing NOTIFY (RFC 1996): tells a zone's secondaries that its serial
 * changed, so they pull now instead of at their next SOA refresh. Sent over
 * UDP from an ephemeral socket, retried with doubling timeouts until the
 * secondary answers (RFC 1996 §3.6 ends retrying on a NOTIFY response),
 * bounded in attempts and therefore in time. A newer NOTIFY for the same zone
 * and secondary replaces one still retrying; close() cancels everything.
 */
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import { isLoopbackHost } from '../config/schema.ts';
import type { Logger } from '../observability/log.ts';
import { HEADER_SIZE, MessageWriter, writeRequestHeader } from '../wire/message.ts';
import { nameToText } from '../zone/name.ts';
import { RRType } from '../zone/records.ts';
import { serialOf } from '../zone/serial.ts';
import type { Zone } from '../zone/zone.ts';

export interface NotifyOptions {
  /** Sends per secondary and change (RFC 1996 §3.6 suggests a handful). */
  attempts: number;
  /** Wait for an answer after the first send; doubles on each retry... */
  firstTimeoutMs: number;
  /** ...up to this. */
  maxTimeoutMs: number;
}

/** 5 sends over at most 2+4+8+16+16 = 46 s. */
export const DEFAULT_NOTIFY_OPTIONS: NotifyOptions = { attempts: 5, firstTimeoutMs: 2000, maxTimeoutMs: 16_000 };

export const OPCODE_NOTIFY = 4;

export type NotifyOutcome = { kind: 'acknowledged' } | { kind: 'rejected'; rcode: number } | { kind: 'unanswered' } | { kind: 'cancelled' } | { kind: 'error'; message: string };

/** The NOTIFY message for `zone` (RFC 1996 §3.7): opcode NOTIFY, AA, question <origin> SOA IN, the current SOA as answer. */
export function notifyMessage(zone: Zone, id: number): Buffer {
  const w = new MessageWriter();
  w.reset(HEADER_SIZE, 0);
  w.name(zone.origin, zone.originKey);
  w.u16(RRType.SOA);
  w.u16(1);
  // The SOA's owner is the question's name: compressed to it.
  w.record(zone.soa.owner, zone.soa.ownerKey, RRType.SOA, 1, zone.soa.ttl, zone.soa.records[0]!);
  const out = Buffer.allocUnsafe(HEADER_SIZE + w.len);
  writeRequestHeader(out, id, OPCODE_NOTIFY, true, 1, 1);
  w.buf.copy(out, HEADER_SIZE, 0, w.len);
  return out;
}

/** True when `reply` is the secondary's NOTIFY response to message `id`: same ID, QR set, opcode NOTIFY. */
export function isNotifyResponse(reply: Buffer, id: number): boolean {
  return reply.length >= 12 && reply.readUInt16BE(0) === id && (reply[2]! & 0x80) !== 0 && ((reply[2]! >> 3) & 0x0f) === OPCODE_NOTIFY;
}

/** Compares addresses as the socket reports them (IPv4-mapped IPv6 folded to IPv4). */
function sameHost(a: string, b: string): boolean {
  const fold = (x: string) => (x.startsWith('::ffff:') && net.isIPv4(x.slice(7)) ? x.slice(7) : x.toLowerCase());
  return fold(a) === fold(b);
}

interface Task {
  cancel(): void;
  done: Promise<NotifyOutcome>;
}

export class Notifier {
  private readonly log: Logger;
  private readonly options: NotifyOptions;
  private readonly tasks = new Map<string, Task>();
  private closed = false;

  constructor(log: Logger, options: Partial<NotifyOptions> = {}) {
    this.log = log;
    this.options = { ...DEFAULT_NOTIFY_OPTIONS, ...options };
  }

  /** NOTIFYs every secondary listed by each zone; returns when all are settled (callers need not wait). */
  notify(zones: Iterable<Zone>): Promise<NotifyOutcome[]> {
    const started: Promise<NotifyOutcome>[] = [];
    if (this.closed) return Promise.resolve([]);
    for (const zone of zones) {
      for (const target of zone.transfer?.notify ?? []) {
        const key = `${zone.originKey} ${target.host} ${target.port}`;
        this.tasks.get(key)?.cancel();
        const task = this.start(zone, target);
        this.tasks.set(key, task);
        started.push(
          task.done.finally(() => {
            if (this.tasks.get(key) === task) this.tasks.delete(key);
          }),
        );
      }
    }
    return Promise.all(started);
  }

  /** NOTIFYs still retrying. */
  get pending(): number {
    return this.tasks.size;
  }

  /** Cancels every NOTIFY in flight and closes their sockets. */
  async close(): Promise<void> {
    this.closed = true;
    const tasks = [...this.tasks.values()];
    for (const t of tasks) t.cancel();
    await Promise.all(tasks.map((t) => t.done));
  }

  private start(zone: Zone, target: { host: string; port: number }): Task {
    const serial = serialOf(zone);
    const secondary = net.isIPv6(target.host) ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
    const fields = { zone: nameToText(zone.origin), secondary, serial };
    const id = crypto.randomInt(0, 0x10000);
    const message = notifyMessage(zone, id);
    const socket = dgram.createSocket(net.isIPv6(target.host) ? 'udp6' : 'udp4');
    let settle: (o: NotifyOutcome) => void = () => {};
    let timer: NodeJS.Timeout | undefined;
    let attempt = 0;
    let settled = false;
    const done = new Promise<NotifyOutcome>((resolve) => {
      settle = (outcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.close();
        resolve(outcome);
      };
    }).then((outcome) => {
      if (outcome.kind === 'acknowledged') this.log.info({ ...fields, attempts: attempt }, 'NOTIFY acknowledged');
      else if (outcome.kind === 'rejected') this.log.warn({ ...fields, attempts: attempt, rcode: outcome.rcode }, 'NOTIFY rejected by the secondary');
      else if (outcome.kind === 'unanswered') this.log.warn({ ...fields, attempts: attempt }, 'NOTIFY unanswered; the secondary will pull at its next SOA refresh');
      else if (outcome.kind === 'error') this.log.warn({ ...fields, attempts: attempt, error: outcome.message }, 'NOTIFY failed');
      return outcome;
    });

    socket.on('error', (err) => settle({ kind: 'error', message: err.message }));
    socket.on('message', (reply, rinfo) => {
      // Only the secondary's own answer to this NOTIFY ends the retries (RFC 1996 §3.6).
      if (rinfo.port !== target.port || !sameHost(rinfo.address, target.host) || !isNotifyResponse(reply, id)) return;
      const rcode = reply[3]! & 0x0f;
      settle(rcode === 0 ? { kind: 'acknowledged' } : { kind: 'rejected', rcode });
    });
    const send = () => {
      if (settled) return;
      if (attempt >= this.options.attempts) {
        settle({ kind: 'unanswered' });
        return;
      }
      const wait = Math.min(this.options.firstTimeoutMs * 2 ** attempt, this.options.maxTimeoutMs);
      attempt++;
      socket.send(message, target.port, target.host, (err) => {
        if (err) settle({ kind: 'error', message: err.message });
      });
      timer = setTimeout(send, wait);
      // A pending NOTIFY must not keep the process alive on its own.
      timer.unref();
    };
    // Towards a loopback secondary the source is loopback too: nothing listens on other interfaces for it.
    const local = isLoopbackHost(target.host) ? (net.isIPv6(target.host) ? '::1' : '127.0.0.1') : undefined;
    socket.bind({ port: 0, ...(local ? { address: local } : {}) }, () => send());
    return { cancel: () => settle({ kind: 'cancelled' }), done };
  }
}

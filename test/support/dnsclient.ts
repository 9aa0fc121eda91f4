/** A small DNS client for tests: dns2 builds and parses, we own the socket and a bounded wait. */
import dgram from 'node:dgram';
import net from 'node:net';
import { Packet } from 'dns2';

export interface QueryOptions {
  type?: number;
  cls?: number;
  /** EDNS UDP size; omitted = no OPT record. */
  edns?: number;
  id?: number;
  timeoutMs?: number;
  host?: string;
}

export function buildQuery(name: string, opts: QueryOptions = {}): Buffer {
  const packet = new Packet();
  packet.header.id = opts.id ?? Math.floor(Math.random() * 65535);
  packet.header.rd = 1;
  packet.questions.push({ name, type: opts.type ?? Packet.TYPE.A, class: opts.cls ?? Packet.CLASS.IN } as never);
  if (opts.edns !== undefined) {
    const opt = Packet.Resource.EDNS([]) as unknown as { class: number };
    opt.class = opts.edns;
    packet.additionals.push(opt as never);
  }
  return packet.toBuffer();
}

/** Sends raw bytes over UDP and resolves with the first reply (or rejects after a bounded wait). */
export function udpExchange(port: number, msg: Buffer, timeoutMs = 2000, host = '127.0.0.1'): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`no UDP reply within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('message', (reply) => {
      clearTimeout(timer);
      socket.close();
      resolve(reply);
    });
    socket.send(msg, port, host);
  });
}

export async function udpQuery(port: number, name: string, opts: QueryOptions = {}) {
  const raw = await udpExchange(port, buildQuery(name, opts), opts.timeoutMs, opts.host);
  return { raw, packet: Packet.parse(raw) };
}

/** Addresses of the A/AAAA records of an answer, in order. */
export function addresses(packet: ReturnType<typeof Packet.parse>): string[] {
  return packet.answers.filter((a) => a.type === Packet.TYPE.A || a.type === Packet.TYPE.AAAA).map((a) => (a as unknown as { address: string }).address);
}

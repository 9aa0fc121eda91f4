/**
 * UDP datagrams from source ports an ordinary socket cannot use (0), through
 * a raw IPv4 socket in python3 (raw-udp.py): spoofing, as an attacker would.
 * Needs root and python3; rawUdpUnavailable() says why not when it cannot run.
 * Loopback only.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { toolPath } from './tools.ts';

const SCRIPT = path.join(import.meta.dirname, 'raw-udp.py');

/** Why raw datagrams cannot be sent here, or undefined when they can. */
export function rawUdpUnavailable(): string | undefined {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'not root (raw sockets need CAP_NET_RAW)';
  if (!toolPath('python3')) return 'no python3';
  return undefined;
}

export interface RawUdpSend {
  /** Source address (127.0.0.0/8); default 127.0.0.1. */
  srcHost?: string;
  srcPort: number;
  dstHost?: string;
  dstPort: number;
  payload: Buffer;
  /** Copies to send (at most 10,000). */
  count?: number;
}

/** Sends the datagram(s); resolves once python3 has handed them to the kernel. */
export function sendRawUdp(o: RawUdpSend): Promise<void> {
  const args = [SCRIPT, o.srcHost ?? '127.0.0.1', String(o.srcPort), o.dstHost ?? '127.0.0.1', String(o.dstPort), o.payload.toString('hex'), String(o.count ?? 1)];
  return new Promise((resolve, reject) => {
    execFile(toolPath('python3')!, args, { timeout: 10_000 }, (err, _stdout, stderr) => (err ? reject(new Error(`raw-udp.py failed: ${err.message}\n${stderr}`)) : resolve()));
  });
}

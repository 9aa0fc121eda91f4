/**
 * What the amplification test and `npm run bench -- --flood` flood with: one
 * zone holding the answers worth amplifying (TXT of about 850 octets, a
 * 60-address pool that EDNS 1232 cuts to fit, ANY at the apex) beside small
 * names a legitimate client asks for, and UDP client sockets bound to a chosen
 * loopback source (127.0.0.2 for the flood, 127.0.1.x for the others: other /24s).
 * Documentation addresses only: nothing is health-checked.
 */
import dgram from 'node:dgram';

export const FLOOD_POOL = Array.from({ length: 60 }, (_, i) => `192.0.2.${i + 1}`);
export const FLOOD_TXT = Array.from({ length: 4 }, (_, i) => `"${String.fromCharCode(97 + i).repeat(200)}"`);
/** Names with one small A record each (198.51.100.N+1), for the legitimate clients. */
export const LEGIT_NAMES = Array.from({ length: 10 }, (_, i) => `host${i}`);

/** The zone in the native YAML format (any origin: the file name gives it). */
export const FLOOD_ZONE = [
  'soa: { mname: ns1, rname: hostmaster, serial: 1 }',
  'records:',
  `  "@": { NS: [ns1, ns2], MX: "10 mail", TXT: [${FLOOD_TXT.join(', ')}] }`,
  '  ns1: { A: 192.0.2.53 }',
  '  ns2: { A: 192.0.2.54 }',
  '  mail: { A: 192.0.2.25 }',
  `  pool: { A: [${FLOOD_POOL.join(', ')}] }`,
  `  txt: { TXT: [${FLOOD_TXT.join(', ')}] }`,
  ...LEGIT_NAMES.map((n, i) => `  ${n}: { A: 198.51.100.${i + 1} }`),
  '',
].join('\n');

/** A UDP socket on an ephemeral port of `host` (a loopback address), with a large receive buffer so replies are not lost to it. */
export function bindUdpClient(host: string): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  s.on('error', () => {});
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, host, () => {
      try {
        s.setRecvBufferSize(8 * 1024 * 1024);
      } catch {
        // capped by the kernel
      }
      resolve(s);
    });
  });
}

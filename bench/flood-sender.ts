/**
 * The flooder of bench/flood.ts, as a worker thread: from 127.0.0.2 over 4
 * sockets, `qps` queries a second for `seconds` (bounded in count and time),
 * then 1 s to collect what comes back. Posts a FloodResult and ends.
 */
import dgram from 'node:dgram';
import { parentPort, workerData } from 'node:worker_threads';
import { parseHeader, rawQuery, sleep } from '../test/support/rawdns.ts';
import { bindUdpClient } from '../test/support/flood.ts';

const ORIGIN = 'flood.test';
const { port, qps, seconds } = workerData as { port: number; qps: number; seconds: number };

/** TXT (about 850 octets), the 60-address pool (EDNS 1232: cut to fit), ANY (one RRset, RFC 8482), random NXDOMAIN. */
function floodQuery(i: number): Buffer {
  const opt = { udpSize: 1232 };
  const id = i & 0xffff;
  switch (i % 4) {
    case 0:
      return rawQuery(`txt.${ORIGIN}`, { id, qtype: 16, opt });
    case 1:
      return rawQuery(`pool.${ORIGIN}`, { id, qtype: 1, opt });
    case 2:
      return rawQuery(ORIGIN, { id, qtype: 255, opt });
    default:
      return rawQuery(`r${i.toString(36)}.${ORIGIN}`, { id, qtype: 1, opt });
  }
}


const sockets = await Promise.all([0, 1, 2, 3].map(() => bindUdpClient('127.0.0.2')));
const r = { sent: 0, sentBytes: 0, responses: 0, responseBytes: 0, truncated: 0 };
for (const s of sockets)
  s.on('message', (m) => {
    r.responses++;
    r.responseBytes += m.length;
    if (m.length >= 12 && parseHeader(m).tc && m.readUInt16BE(6) === 0) r.truncated++;
  });
const total = qps * seconds;
const perTick = Math.max(1, Math.round(qps / 100));
const start = performance.now();
let i = 0;
while (i < total && performance.now() - start < seconds * 1000 + 500) {
  const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * qps) + perTick);
  for (; i < due; i++) {
    const q = floodQuery(i);
    r.sent++;
    r.sentBytes += q.length;
    sockets[i % sockets.length]!.send(q, port, '127.0.0.1');
  }
  await sleep(10);
}
await sleep(1000);
for (const s of sockets) s.close();
parentPort!.postMessage(r);

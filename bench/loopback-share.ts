/**
 * How much of a process's CPU is the kernel receiving packets for someone
 * else. On loopback, a TCP or UDP send runs the receiver's side too (the
 * packet is queued to the backlog and processed in softirq on the sender's way
 * out of the syscall): rrdns's request writes pay the backends' receive
 * processing (and the wake-up of the backend), the backends' response writes
 * pay rrdns's. With backends on other machines each side would pay its own
 * receive instead (from a NIC interrupt). `npm run bench:checks -- --perf`
 * records both processes with perf during the window and prints it, so the
 * figure rrdns is charged can be read with and without it.
 *
 * Samples: perf's cpu-clock at FREQ Hz per thread while on a CPU, so a
 * sample is 1/FREQ s of CPU time. A sample counts as "receive for a peer" when
 * its kernel stack has the loopback receive path (process_backlog or
 * __netif_receive_skb): in a sender's context that is always the peer's receive.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startProcess } from '../test/support/spawn.ts';
import { toolPath } from '../test/support/tools.ts';

export const FREQ = 499;
const RX = new Set(['process_backlog', '__netif_receive_skb', '__netif_receive_skb_one_core', 'net_rx_action']);

export interface ProcessShare {
  /** CPU share of one core seen by perf (all threads), and the part of it in the receive path for a peer. */
  cpu: number;
  peerReceive: number;
  /** By thread name: the same two figures. */
  threads: Map<string, { cpu: number; peerReceive: number }>;
}

/** True when perf can record here (installed, and allowed). */
export function perfAvailable(): boolean {
  return toolPath('perf') !== undefined;
}

/**
 * Records `pids` for `seconds` (bounded: perf's own `sleep`, and a kill by PID
 * past it) and returns each process's share, keyed by PID.
 */
export async function recordPeerReceive(pids: number[], seconds: number, dir: string): Promise<Map<number, ProcessShare>> {
  const file = path.join(dir, 'perf.data');
  const perf = startProcess('perf', toolPath('perf')!, ['record', '-q', '-g', '-F', String(FREQ), '-p', pids.join(','), '-o', file, '--', 'sleep', String(seconds)]);
  const exited = await Promise.race([perf.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), (seconds + 10) * 1000))]);
  if (!exited) await perf.stop();
  const script = await new Promise<string>((resolve, reject) =>
    execFile(toolPath('perf')!, ['script', '-i', file, '-F', 'pid,tid,comm,ip,sym'], { maxBuffer: 512 * 1024 * 1024 }, (err, out) => (err ? reject(err) : resolve(out))),
  );
  fs.rmSync(file, { force: true });
  const shares = new Map<number, ProcessShare>();
  let pid = -1;
  let comm = '';
  let rx = false;
  const end = () => {
    if (pid < 0) return;
    let s = shares.get(pid);
    if (!s) shares.set(pid, (s = { cpu: 0, peerReceive: 0, threads: new Map() }));
    let t = s.threads.get(comm);
    if (!t) s.threads.set(comm, (t = { cpu: 0, peerReceive: 0 }));
    const unit = 1 / (FREQ * seconds);
    s.cpu += unit;
    t.cpu += unit;
    if (rx) {
      s.peerReceive += unit;
      t.peerReceive += unit;
    }
    pid = -1;
  };
  for (const line of script.split('\n')) {
    if (line.trim() === '') {
      end();
    } else if (!/^\s/.test(line)) {
      end();
      // "comm PID/TID" (comm may contain spaces): the last field is pid/tid.
      const m = /^(.*?)\s+(\d+)\/(\d+)\s*$/.exec(line);
      if (!m) continue;
      comm = m[1]!.trim();
      pid = Number(m[2]);
      rx = false;
    } else if (pid >= 0 && !rx) {
      const sym = line.trim().split(/\s+/)[1]?.split('+')[0] ?? '';
      if (RX.has(sym)) rx = true;
    }
  }
  end();
  return shares;
}

/**
 * A network namespace of the test's own, for ICMP targets that answer and
 * ones that do not: a veth pair to it, an address inside that answers and
 * can be taken away (`stopAnswering` / `startAnswering`), and a range routed
 * into it where nothing answers (blackhole routes there). The sandbox answers
 * some addresses outside loopback, so "does not answer" must be made here.
 *
 * Addresses are picked at random in 10.x.y.0/24 and fd7e:x:y::/48 and
 * checked unused first (other tests may have namespaces of their own).
 * close() deletes the namespace, which removes the veth pair and the routes
 * through it; it is also done at process exit.
 */
import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';

export interface Netns {
  name: string;
  /** Answers while `startAnswering` (the initial state). */
  answering4: string;
  answering6: string;
  /** Routed into the namespace and dropped there: never answers. */
  silent4: string;
  silent6: string;
  /** The namespace's end of the link: always answers. */
  peer4: string;
  peer6: string;
  stopAnswering(address: string): void;
  startAnswering(address: string): void;
  close(): void;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 }).toString();

/** Why namespaces cannot be made here (the test is skipped with it), or undefined. */
export function netnsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to create a network namespace (ip netns add)';
  try {
    ip('netns', 'list');
  } catch (e) {
    return `ip netns is not available: ${(e as Error).message.split('\n')[0]}`;
  }
  return undefined;
}

const open = new Set<string>();
process.once('exit', () => {
  for (const n of open) {
    try {
      ip('netns', 'del', n);
    } catch {
      // already gone
    }
  }
});

function unusedSubnet(): [number, number] {
  // Bounded: 20 tries in 50 × 256 subnets.
  for (let i = 0; i < 20; i++) {
    const x = randomInt(200, 250);
    const y = randomInt(0, 256);
    const routes4 = ip('-o', 'route', 'show', 'to', 'match', `10.${x}.${y}.1`).split('\n').filter((l) => l && !l.startsWith('default'));
    const routes6 = ip('-o', '-6', 'route', 'show', 'to', 'match', `fd7e:${x}:${y}::1`).split('\n').filter((l) => l && !l.startsWith('default'));
    if (routes4.length === 0 && routes6.length === 0) return [x, y];
  }
  throw new Error('no unused 10.x.y.0/24 found for a test network namespace');
}

export function createNetns(): Netns {
  const [x, y] = unusedSubnet();
  const tag = `${process.pid % 10000}${randomInt(0, 100)}`;
  const name = `rrdns-icmp-${tag}`;
  const host = `ri${tag}a`;
  const peer = `ri${tag}b`;
  ip('netns', 'add', name);
  open.add(name);
  const net4 = `10.${x}.${y}`;
  const net6 = `fd7e:${x}:${y}`;
  try {
    ip('link', 'add', host, 'type', 'veth', 'peer', 'name', peer, 'netns', name);
    ip('addr', 'add', `${net4}.1/30`, 'dev', host);
    ip('-6', 'addr', 'add', `${net6}::1/64`, 'dev', host, 'nodad');
    ip('link', 'set', host, 'up');
    ip('-n', name, 'addr', 'add', `${net4}.2/30`, 'dev', peer);
    ip('-n', name, '-6', 'addr', 'add', `${net6}::2/64`, 'dev', peer, 'nodad');
    ip('-n', name, 'link', 'set', peer, 'up');
    ip('-n', name, 'link', 'set', 'lo', 'up');
    // The rest of the /24 (and a second /64) lead into the namespace.
    ip('route', 'add', `${net4}.0/24`, 'via', `${net4}.2`);
    ip('-6', 'route', 'add', `${net6}:1::/64`, 'via', `${net6}::2`);
    // Inside, half of it is a blackhole: echoes there are dropped without a word.
    ip('-n', name, 'route', 'add', 'blackhole', `${net4}.128/25`);
    ip('-n', name, '-6', 'route', 'add', 'blackhole', `${net6}:1:8000::/65`);
  } catch (e) {
    ip('netns', 'del', name);
    open.delete(name);
    throw e;
  }
  const onLo = (address: string) => (address.includes(':') ? ['-6', 'addr', '$op', `${address}/128`, 'dev', 'lo', 'nodad'] : ['addr', '$op', `${address}/32`, 'dev', 'lo']);
  const answering4 = `${net4}.9`;
  const answering6 = `${net6}:1::9`;
  const ns: Netns = {
    name,
    answering4,
    answering6,
    silent4: `${net4}.200`,
    silent6: `${net6}:1:8000::5`,
    peer4: `${net4}.2`,
    peer6: `${net6}::2`,
    // Both idempotent (a test's cleanup may repeat them).
    stopAnswering(address) {
      try {
        ip('-n', name, ...onLo(address).map((a) => (a === '$op' ? 'del' : a)).filter((a) => a !== 'nodad'));
      } catch (e) {
        if (!/Cannot assign requested address/.test(String((e as { stderr?: unknown }).stderr ?? e))) throw e;
      }
    },
    startAnswering(address) {
      ip('-n', name, ...onLo(address).map((a) => (a === '$op' ? 'replace' : a)));
    },
    close() {
      if (!open.delete(name)) return;
      ip('netns', 'del', name);
    },
  };
  ns.startAnswering(answering4);
  ns.startAnswering(answering6);
  return ns;
}

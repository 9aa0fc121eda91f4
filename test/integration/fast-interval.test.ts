/**
 * fastInterval with the real server and real HTTP backends on 127.0.0.x: a
 * backend that starts failing (its application stopped behind a listener that
 * still answers, 500) is taken down by fast re-checks, and a steady pool keeps
 * its normal probe rate. No timing assertions: the schedule is read from the
 * probes the backends saw, counted against a witness backend checked on the
 * same interval (its probes are the interval's ticks).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.ts';
import { startHttpBackend, waitFor, type Backend } from '../support/backends.ts';
import { addresses, udpQuery } from '../support/dnsclient.ts';

const servers: TestServer[] = [];
const backends: Backend[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const b of backends.splice(0)) await b.close();
});

// A long interval next to a short fastInterval, so the two schedules cannot be mistaken for each other.
const CHECK = { interval: '3s', fastInterval: '300ms', timeout: '1s', fall: 3, rise: 2 };

async function serve(victim: Backend, witness: Backend): Promise<TestServer> {
  const zone = {
    origin: 'fast.test',
    ttl: { default: 300, min: 0 },
    soa: { mname: 'ns1', rname: 'hostmaster', serial: 1, minimum: 30 },
    records: {
      '@': { NS: 'ns1' },
      ns1: { A: '192.0.2.53' },
      www: {
        A: [victim.address, witness.address],
        pool: { check: CHECK, members: { [victim.address]: { check: { port: victim.port } }, [witness.address]: { check: { port: witness.port } } } },
      },
    },
  };
  const t = await startTestServer({ 'fast.test.yaml': JSON.stringify(zone) });
  servers.push(t);
  return t;
}

const member = (t: TestServer, address: string) => t.server.healthSnapshot().find((p) => p.name === 'www.fast.test.')!.members.find((m) => m.address === address)!;

describe('fastInterval', () => {
  it('a failing backend goes down after fall - 1 fast re-checks, within one interval of the witness; steady, both are probed at the interval', async () => {
    const victim = await startHttpBackend();
    const witness = await startHttpBackend();
    backends.push(victim, witness);
    const t = await serve(victim, witness);
    expect(addresses((await udpQuery(t.port, 'www.fast.test')).packet).sort()).toEqual([victim.address, witness.address].sort());

    // Steady: over 3 of the witness's probes (3 intervals) the victim is probed as often, give or take
    // the phase and one fast re-check a timeout on a loaded machine may cause (re-checking at the fast
    // interval throughout would be 30).
    const w0 = witness.hits;
    const v0 = victim.hits;
    await waitFor(() => witness.hits >= w0 + 3, 20_000, 'three witness probes');
    expect(Math.abs(victim.hits - v0 - 3)).toBeLessThanOrEqual(2);

    victim.setMode('status500');
    const failedFrom = victim.hits;
    await waitFor(() => member(t, victim.address).health === 'down', 20_000, 'the victim to go down');
    const failing = victim.requests.slice(-(victim.hits - failedFrom));
    // Exactly `fall` failing probes took it down: the first on its grid, the others fast re-checks…
    expect(failing).toHaveLength(CHECK.fall);
    expect(member(t, victim.address)).toMatchObject({ consecutiveFail: CHECK.fall, served: false });
    // …all before the next interval tick: the witness was probed at most once meanwhile (without
    // fastInterval it would be fall - 1 = 2 times, one per interval between the failing probes).
    const first = failing[0]!.at;
    const last = failing.at(-1)!.at;
    const ticks = witness.requests.filter((r) => r.at > first && r.at < last).length;
    expect(ticks).toBeLessThanOrEqual(1);
    expect(addresses((await udpQuery(t.port, 'www.fast.test')).packet)).toEqual([witness.address]);

    // Down and failing is settled: no more fast re-checks, the victim is probed at the interval again.
    const w1 = witness.hits;
    const v1 = victim.hits;
    await waitFor(() => witness.hits >= w1 + 2, 20_000, 'two witness probes');
    expect(victim.hits - v1).toBeLessThanOrEqual(3);

    // Recovery: rise - 1 = 1 fast re-check after the first success, before the next interval tick.
    victim.setMode('ok');
    const okFrom = victim.hits;
    await waitFor(() => member(t, victim.address).health === 'up', 20_000, 'the victim to come back');
    const passing = victim.requests.slice(-(victim.hits - okFrom));
    expect(passing.length).toBeGreaterThanOrEqual(CHECK.rise);
    const rising = passing.slice(-CHECK.rise);
    expect(witness.requests.filter((r) => r.at > rising[0]!.at && r.at < rising.at(-1)!.at).length).toBeLessThanOrEqual(1);
  });
});

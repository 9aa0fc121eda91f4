import { startServers, compareAll, caseText } from '../test/support/diff-compare.ts';
const text = `z0.fuzz.test. 3600 IN SOA ns1.z0.fuzz.test. h.z0.fuzz.test. 1 3600 900 1209600 60
z0.fuzz.test. 3600 IN NS ns1.z0.fuzz.test.
ns1.z0.fuzz.test. 3600 IN A 192.0.2.1
*.w.z0.fuzz.test. 300 IN CNAME a.w.z0.fuzz.test.
`;
const zones = [{ origin: ['z0', 'fuzz', 'test'], text }];
const s = await startServers(zones);
const q = (l: string) => ({ labels: [l, 'w', 'z0', 'fuzz', 'test'], qtype: 'A', edns: null, transport: 'udp' as const, rd: false });
for (const order of [['a', 'b'], ['c', 'a']]) {
  const cases = await compareAll(s, zones, order.map(q), 1);
  for (const c of cases) console.log(caseText(c));
}
await s.close();

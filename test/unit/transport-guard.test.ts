/**
 * The UDP send guard (serveUdp), over a socket stub: the kernel's refusals
 * (EPERM, EMSGSIZE, ENOBUFS, EHOSTUNREACH...) cannot be caused on demand on
 * loopback, so the stub's send throws or calls back with each. Whatever
 * happens, nothing escapes the 'message' listener (an exception there would
 * end the process), the failure is counted by code and reported to the sink,
 * and the next datagram is handled as usual.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { Metrics, TransportFaults } from '../../src/observability/metrics.ts';
import { serveUdp, type DatagramHandler, type UdpSocketLike } from '../../src/wire/udp.ts';

type SendBehaviour = { throws: string | null } | { callsBack: string | null } | 'ok';

const errnoError = (code: string | null) => Object.assign(new Error(`send failed: ${code}`), code === null ? {} : { code });

/** A dgram socket as serveUdp sees it: 'message' and 'error' events, and a send that does what it is told. */
class StubSocket extends EventEmitter {
  behaviour: SendBehaviour = 'ok';
  sent: { port: number; address: string }[] = [];
  send(_msg: Uint8Array, port: number, address: string, cb: (err: Error | null) => void): void {
    const b = this.behaviour;
    if (b !== 'ok' && 'throws' in b) throw errnoError(b.throws);
    this.sent.push({ port, address });
    // Like dgram: the callback runs later, with the error or null.
    queueMicrotask(() => cb(b !== 'ok' && 'callsBack' in b ? errnoError(b.callsBack) : null));
  }
  receive(port = 5300): void {
    this.emit('message', Buffer.from('query'), { address: '127.0.0.1', port, family: 'IPv4', size: 5 });
  }
}

/** Writes a 6-octet answer into the transport's buffer. */
const answer: DatagramHandler = (_msg, _length, _view, _peer, out, at) => out.write('answer', at);
const settle = () => new Promise((r) => setTimeout(r, 0));

function setup(handler: DatagramHandler = answer) {
  const socket = new StubSocket();
  const faults = new TransportFaults();
  const reported: string[] = [];
  serveUdp(socket as unknown as UdpSocketLike, handler, (_err, where) => reported.push(where), faults);
  return { socket, faults, reported };
}

describe('UDP send guard', () => {
  const cases: { name: string; behaviour: SendBehaviour; counted: string }[] = [
    { name: 'sync ERR_SOCKET_BAD_PORT', behaviour: { throws: 'ERR_SOCKET_BAD_PORT' }, counted: 'udp ERR_SOCKET_BAD_PORT' },
    { name: 'sync ERR_SOCKET_DGRAM_NOT_RUNNING (socket closed)', behaviour: { throws: 'ERR_SOCKET_DGRAM_NOT_RUNNING' }, counted: 'udp ERR_SOCKET_DGRAM_NOT_RUNNING' },
    { name: 'sync EPERM', behaviour: { throws: 'EPERM' }, counted: 'udp EPERM' },
    { name: 'sync error without a code', behaviour: { throws: null }, counted: 'udp other' },
    { name: 'async EPERM (firewall)', behaviour: { callsBack: 'EPERM' }, counted: 'udp EPERM' },
    { name: 'async EMSGSIZE', behaviour: { callsBack: 'EMSGSIZE' }, counted: 'udp EMSGSIZE' },
    { name: 'async ENOBUFS', behaviour: { callsBack: 'ENOBUFS' }, counted: 'udp ENOBUFS' },
    { name: 'async EHOSTUNREACH', behaviour: { callsBack: 'EHOSTUNREACH' }, counted: 'udp EHOSTUNREACH' },
    { name: 'async ENETUNREACH', behaviour: { callsBack: 'ENETUNREACH' }, counted: 'udp ENETUNREACH' },
    { name: 'async ECONNREFUSED', behaviour: { callsBack: 'ECONNREFUSED' }, counted: 'udp ECONNREFUSED' },
    { name: 'async code nobody listed', behaviour: { callsBack: 'EWHATEVER' }, counted: 'udp other' },
  ];
  for (const c of cases) {
    it(`${c.name}: dropped, counted as "${c.counted}", reported, and the next datagram is answered`, async () => {
      const { socket, faults, reported } = setup();
      socket.behaviour = c.behaviour;
      expect(() => socket.receive()).not.toThrow();
      await settle();
      expect([...faults.sendErrors]).toEqual([[c.counted, 1]]);
      expect(reported).toEqual(['udp send']);
      socket.behaviour = 'ok';
      const before = socket.sent.length;
      socket.receive();
      await settle();
      expect(socket.sent.length).toBe(before + 1);
      expect([...faults.sendErrors]).toEqual([[c.counted, 1]]);
    });
  }

  it('source port 0: not handled at all (no reply is possible), counted as ERR_SOCKET_BAD_PORT', async () => {
    let handled = 0;
    const { socket, faults } = setup((...args) => (handled++, answer(...args)));
    socket.receive(0);
    await settle();
    expect(handled).toBe(0);
    expect(socket.sent).toEqual([]);
    expect(faults.sendErrors.get('udp ERR_SOCKET_BAD_PORT')).toBe(1);
  });

  it('a throwing handler: dropped, counted once, reported; nothing sent', async () => {
    const { socket, faults, reported } = setup(() => {
      throw new Error('bug');
    });
    expect(() => socket.receive()).not.toThrow();
    await settle();
    expect(socket.sent).toEqual([]);
    expect(faults.handlerErrors.get('udp')).toBe(1);
    expect(reported).toEqual(['udp handler']);
  });

  it('a sink and counters that throw themselves still cannot throw out of the listener', async () => {
    const socket = new StubSocket();
    const hooks = {
      sendError() {
        throw new Error('counter broke');
      },
      handlerError() {
        throw new Error('counter broke');
      },
    };
    let handlerThrows = false;
    serveUdp(
      socket as unknown as UdpSocketLike,
      (...args) => {
        if (handlerThrows) throw new Error('bug');
        return answer(...args);
      },
      () => {
        throw new Error('sink broke');
      },
      hooks,
    );
    socket.behaviour = { throws: 'EPERM' };
    expect(() => socket.receive()).not.toThrow();
    socket.behaviour = { callsBack: 'EPERM' };
    socket.receive();
    await settle();
    handlerThrows = true;
    expect(() => socket.receive()).not.toThrow();
    expect(() => socket.receive(0)).not.toThrow();
    expect(() => socket.emit('error', Object.assign(new Error('x'), { code: 'EIO' }))).not.toThrow();
  });

  it('counts reach /metrics by transport and code', async () => {
    const m = new Metrics({ defaultMetrics: false });
    const socket = new StubSocket();
    serveUdp(socket as unknown as UdpSocketLike, answer, () => {}, m.faults);
    socket.behaviour = { callsBack: 'ENOBUFS' };
    socket.receive();
    socket.receive();
    await settle();
    expect(await m.text()).toContain('rrdns_send_errors_total{transport="udp",code="ENOBUFS"} 2');
  });
});

/**
 * dns2's wire format, without the rest of dns2.
 *
 * The package's entry point also loads its servers and clients (UDP, TCP, and
 * DNS over HTTPS through node:http2 and node:https), which rrdns never uses:
 * in every rrdns process they cost ~2 MB of heap and ~2 MB of the node
 * binary's pages (the http2 and https modules' code and sources). Its exports
 * map names no subpath, so packet.js (which requires only node:net, node:util,
 * node:crypto and its own reader and writer) is loaded by its path, next to the
 * package.json that the map does export. It is the same module object as
 * dns2's `Packet` (index.js sets `DNS.Packet = require('./packet')`); a test
 * checks both, and that node:http2 stays unloaded.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Packet as Dns2Packet } from 'dns2';

const require = createRequire(import.meta.url);
const packageDir = path.dirname(require.resolve('dns2/package.json'));

export const Packet = require(path.join(packageDir, 'packet.js')) as typeof Dns2Packet;

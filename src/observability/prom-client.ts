/**
 * The parts of prom-client rrdns uses, without the rest of prom-client.
 *
 * The package's entry point also loads its Pushgateway client (node:http,
 * node:https and node:zlib) and its cluster aggregator; rrdns pushes nothing
 * and runs no cluster workers. Leaving them out keeps ~3 MB of heap and ~2 MB
 * of the node binary's pages out of every rrdns process (with 10,000 zones
 * that is part of the 100 MB budget of issue 11). prom-client has no exports
 * map, so its lib/ modules are its public files; they are the same module
 * objects the entry point re-exports (test/unit/loaded-modules.test.ts checks
 * both, and that node:https and node:zlib stay unloaded; node:cluster comes
 * with node:dgram and node:net anyway).
 */
import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';

const require = createRequire(import.meta.url);

export const Registry = require('prom-client/lib/registry') as typeof PromClient.Registry;
export type Registry = PromClient.Registry;
export const Counter = require('prom-client/lib/counter') as typeof PromClient.Counter;
export type Counter<T extends string = string> = PromClient.Counter<T>;
export const Gauge = require('prom-client/lib/gauge') as typeof PromClient.Gauge;
export type Gauge<T extends string = string> = PromClient.Gauge<T>;
export const Histogram = require('prom-client/lib/histogram') as typeof PromClient.Histogram;
export type Histogram<T extends string = string> = PromClient.Histogram<T>;
export const collectDefaultMetrics = require('prom-client/lib/defaultMetrics') as typeof PromClient.collectDefaultMetrics;

// `npm ci` / `npm install` run this (package.json "install"): builds the batched UDP addon
// (native/udp_batch.c) and the malloc_trim one (native/memory.c) with node-gyp against the headers of the Node that runs the install
// (--nodedir: there is no internet to download them from). It never fails the install: without
// a compiler, on another platform, or with RRDNS_NATIVE=off, rrdns uses node:dgram and says so
// when it starts. `npm run build:native` runs it again by hand.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const say = (m) => console.error(`rrdns native UDP: ${m}`);

function nodeGyp() {
  if (process.env.npm_config_node_gyp && fs.existsSync(process.env.npm_config_node_gyp)) return process.env.npm_config_node_gyp;
  // npm bundles node-gyp; find it next to the npm that runs us or the node that runs us.
  const candidates = [];
  if (process.env.npm_execpath && fs.existsSync(process.env.npm_execpath)) candidates.push(path.join(path.dirname(fs.realpathSync(process.env.npm_execpath)), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  // Run by hand (`node native/build.mjs`): the npm on PATH.
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const npm = path.join(dir, 'npm');
    if (dir && fs.existsSync(npm)) candidates.push(path.join(path.dirname(fs.realpathSync(npm)), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  }
  const prefix = path.dirname(path.dirname(process.execPath));
  candidates.push(path.join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return candidates.find((c) => fs.existsSync(c));
}

/** The directory whose include/node holds this Node's headers: the official tarball layout (bin/node, include/node). */
function nodeDir() {
  const fromExec = path.dirname(path.dirname(fs.realpathSync(process.execPath)));
  // The npm registry's `node` package keeps the tarball (with include/) in a platform package beside its launcher.
  const npmNode = path.join(fromExec, 'node_modules', `node-${process.platform}-${process.arch}`);
  for (const dir of [fromExec, npmNode, process.env.npm_config_nodedir, '/usr/local', '/usr']) {
    if (dir && fs.existsSync(path.join(dir, 'include', 'node', 'node_api.h')) && fs.existsSync(path.join(dir, 'include', 'node', 'common.gypi'))) return dir;
  }
  return undefined;
}

function main() {
  if (process.env.RRDNS_NATIVE === 'off') return say('RRDNS_NATIVE=off: not built; rrdns will use node:dgram');
  if (process.platform !== 'linux') return say(`${process.platform}: recvmmsg/sendmmsg are Linux's; rrdns will use node:dgram`);
  const gyp = nodeGyp();
  const dir = nodeDir();
  if (!gyp) return say('node-gyp not found (it comes with npm); rrdns will use node:dgram');
  if (!dir) return say(`no Node headers (include/node/node_api.h) next to ${process.execPath}; rrdns will use node:dgram`);
  const r = spawnSync(process.execPath, [gyp, 'rebuild', `--directory=${here}`, `--nodedir=${dir}`, '--loglevel=warn'], { stdio: 'inherit', env: { ...process.env, npm_config_nodedir: dir } });
  if (r.status === 0) return say(`built native/build/Release/udp_batch.node and memory.node against ${dir}/include/node`);
  say(`build failed (exit ${r.status ?? r.signal}: is there a C compiler, make and python3?); rrdns will use node:dgram`);
}

main();

/**
 * vitest globalSetup: installs the Debian tools once, up front, in the main
 * process, so no test pays for apt inside its timeout and the forked workers
 * (which inherit RRDNS_TOOLS_CHECKED) never run apt themselves.
 */
import { CHECKED_ENV, ensureTool, TOOLS } from './tools.ts';

export default function setup(): void {
  const missingTools = TOOLS.filter(({ binary, pkg }) => !ensureTool(binary, pkg));
  process.env[CHECKED_ENV] = '1';
  if (missingTools.length > 0) {
    console.warn(`[rrdns tests] suites needing ${missingTools.map((t) => t.binary).join(', ')} will be skipped`);
  }
}

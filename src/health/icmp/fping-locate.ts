/**
 * Finding fping, which sends the echoes of `type: icmp` checks. It is looked
 * up on PATH (no name of ours to configure; Debian installs /usr/bin/fping)
 * when zones are loaded (a zone with icmp checks is refused with an error
 * naming fping when it is missing: start-up fails, a reload keeps the old
 * zones) and again each time fping is started.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, RrdnsError } from '../../errors.ts';

export const FPING = 'fping';

/** The first executable `fping` in `pathVar` (PATH), or undefined. */
export function locateFping(pathVar: string | undefined = process.env.PATH): string | undefined {
  for (const dir of (pathVar ?? '').split(path.delimiter)) {
    if (dir === '' || !path.isAbsolute(dir)) continue;
    const file = path.join(dir, FPING);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

export const fpingMissingMessage = (pathVar: string | undefined = process.env.PATH) =>
  `check type icmp needs fping (it sends the echo requests), and no executable fping is on PATH (${pathVar ?? ''}): install it (Debian/Ubuntu: apt-get install fping)`;

/** fping's path; throws RRDNS_ICMP_UNAVAILABLE naming it when it is not installed. */
export function requireFping(pathVar: string | undefined = process.env.PATH): string {
  const found = locateFping(pathVar);
  if (found === undefined) throw new RrdnsError(ErrorCode.ICMP_UNAVAILABLE, fpingMissingMessage(pathVar));
  return found;
}

/**
 * pino JSON logs to stdout (or a given stream, for tests). Writes are
 * synchronous so no line is lost at exit; the hot path logs nothing below debug.
 */
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, destination?: DestinationStream): Logger {
  let dest = destination;
  if (!dest) {
    const stdout = pino.destination({ dest: 1, sync: true });
    // A closed stdout (the reader went away) must not take the DNS service down with it.
    stdout.on('error', () => {});
    dest = stdout;
  }
  return pino({ level, base: { name: 'rrdns' }, timestamp: pino.stdTimeFunctions.isoTime }, dest);
}

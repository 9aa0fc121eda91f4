/**
 * The reload coordinator: re-reads the zones directory on request (SIGHUP,
 * the admin API, the watcher), one reload at a time, and keeps the outcome
 * for /readyz, /api/v1/health and logs.
 *
 * Everything is parsed and validated before one swap replaces the served set.
 * A file with errors does not block the others: its zone keeps serving its
 * previous version (as Knot does per zone), the errors are logged with file
 * and line and shown until a later reload is clean. A zone whose file was
 * removed stops being served.
 *
 * Two faults are survived here:
 * - A reload that fails in any way (even a throwing logger) settles with
 *   `ok: false`; the queue never stays rejected, so later reloads still run.
 * - A directory that suddenly holds no zone at all (a failed mount, a
 *   ConfigMap swapped to nothing) is refused when the reload was not asked
 *   for by a person: the watcher's reloads keep the served zones, log an
 *   error and show it in /readyz until a later reload is clean. SIGHUP and
 *   the API (`allowEmpty`) do apply an empty directory: that is how zones
 *   are removed on purpose, all at once.
 */
import fs from 'node:fs';
import { formatIssue, ZoneValidationError, type ZoneIssue } from '../errors.ts';
import type { Logger } from '../observability/log.ts';
import type { LoadResult, ReadCounts } from '../zone/load.ts';
import { nameToText } from '../zone/name.ts';
import type { Zone } from '../zone/zone.ts';
import type { ServedZone } from './served-zone.ts';

/** What the last reload did, for /readyz, /api/v1/health and logs. */
export interface ReloadStatus {
  /** ISO time of the last reload attempt (undefined before the first). */
  at?: string;
  trigger?: string;
  ok: boolean;
  /** Every problem found, as `file:line path: message`. */
  errors: string[];
  /** Zones still served from their previous version because their file has errors now. */
  keptPrevious: string[];
}

export type ReloadResult = { ok: true; zones: number } | { ok: false; zones: number; issues: readonly ZoneIssue[] };

/** What the coordinator needs from the server. */
export interface ReloadHost {
  readonly log: Logger;
  readonly zonesDir: string;
  /**
   * Reads and validates the zones directory (never swaps anything in); yields to the event loop as it goes.
   * `changed` names the files a watcher saw change (the others are taken as unchanged); absent: look at every file.
   */
  read(changed?: ReadonlySet<string>): Promise<LoadResult>;
  /** Files looked at and parsed by the last read (parsed: changed since the read before). */
  counts(): ReadCounts;
  /** Swaps `zones` in as the served set; throws ZoneValidationError when they cannot be served. */
  install(zones: Zone[]): Promise<void>;
  /** The zones served now. */
  served(): Iterable<ServedZone>;
  /** How many zones are served now (without walking them). */
  servedCount(): number;
  /** True once the server is closing: reloads then do nothing. */
  closing(): boolean;
  /** Pools served now (for the log line). */
  poolCount(): number;
}

/** How many names a log line shows before it only counts: 10,000 zones must not make a 900 KB line. */
export const LOG_NAMES = 5;

/** A list of names for a log line: the first few under `key`, the count under `${key}Count`. */
export function zoneSummary(labels: readonly string[], key = 'zones'): Record<string, unknown> {
  return servedSummary(labels, labels.length, key);
}

/**
 * zoneSummary of the served zones without a list of them: their first few
 * labels and `count` (the store's size), so a reload among 10,000 zones does
 * not copy 10,000 labels for a line that shows five.
 */
export function servedSummary(labels: Iterable<string>, count: number, key = 'zones'): Record<string, unknown> {
  const shown: string[] = [];
  for (const label of labels) {
    if (shown.length === LOG_NAMES) break;
    shown.push(label);
  }
  return { [key]: shown, [`${key}Count`]: count };
}

function* labelsOf(served: Iterable<ServedZone>): Generator<string> {
  for (const z of served) yield z.label;
}

export class ReloadCoordinator {
  private readonly host: ReloadHost;
  private last: Promise<ReloadResult> = Promise.resolve({ ok: true, zones: 0 });
  private current: ReloadStatus = { ok: true, errors: [], keptPrevious: [] };

  constructor(host: ReloadHost) {
    this.host = host;
  }

  /** The outcome of the last reload. */
  get status(): ReloadStatus {
    return this.current;
  }

  /**
   * Queues a reload after the ones already asked for; resolves with its
   * outcome and never rejects. `allowEmpty: false` refuses a directory that
   * holds no zone while zones are served.
   */
  reload(trigger: string, opts: { allowEmpty: boolean; changed?: ReadonlySet<string> | undefined } = { allowEmpty: true }): Promise<ReloadResult> {
    // Whatever the previous reload did, this one runs.
    const run = this.last.then(
      () => this.settled(trigger, opts.allowEmpty, opts.changed),
      () => this.settled(trigger, opts.allowEmpty, opts.changed),
    );
    this.last = run;
    return run;
  }

  /** reloadNow, turned into a result even when it throws. */
  private async settled(trigger: string, allowEmpty: boolean, changed: ReadonlySet<string> | undefined): Promise<ReloadResult> {
    try {
      return await this.reloadNow(trigger, allowEmpty, changed);
    } catch (e) {
      const issues: ZoneIssue[] = [{ file: this.host.zonesDir, message: `reload failed: ${(e as Error)?.message ?? String(e)}` }];
      this.current = { at: new Date().toISOString(), trigger, ok: false, errors: issues.map(formatIssue), keptPrevious: [...this.host.served()].map((z) => z.label) };
      try {
        this.host.log.error({ trigger, err: e }, 'zone reload failed; previous zones keep serving');
      } catch {
        // The log itself is what failed: the status above still shows it.
      }
      return { ok: false, zones: this.zoneCount(), issues };
    }
  }

  private zoneCount(): number {
    return this.host.servedCount();
  }

  private async reloadNow(trigger: string, allowEmpty: boolean, changed: ReadonlySet<string> | undefined): Promise<ReloadResult> {
    const host = this.host;
    if (host.closing()) return { ok: true, zones: this.zoneCount() };
    const at = new Date().toISOString();
    const started = performance.now();
    let issues: ZoneIssue[];
    let kept: Zone[] = [];
    try {
      const result = await host.read(changed);
      const served = this.zoneCount();
      if (!allowEmpty && served > 0 && result.zones.length === 0 && result.issues.length === 0) return this.refuseEmpty(at, trigger, served);
      issues = result.issues;
      if (issues.length > 0) kept = this.previousOfBroken(result.zones);
      await host.install(kept.length === 0 ? result.zones : [...result.zones, ...kept]);
    } catch (e) {
      issues = e instanceof ZoneValidationError ? [...e.issues] : [{ file: host.zonesDir, message: (e as Error).message }];
      this.current = { at, trigger, ok: false, errors: issues.map(formatIssue), keptPrevious: [...host.served()].map((z) => z.label) };
      host.log.error({ trigger, issues: this.current.errors.slice(0, LOG_NAMES), issueCount: issues.length }, 'zone reload failed; previous zones keep serving');
      return { ok: false, zones: this.zoneCount(), issues };
    }
    const keptPrevious = kept.map((z) => nameToText(z.origin));
    this.current = { at, trigger, ok: issues.length === 0, errors: issues.map(formatIssue), keptPrevious };
    const count = host.servedCount();
    const { files, parsed, unchanged, looked } = host.counts();
    const summary = { trigger, ...servedSummary(labelsOf(host.served()), count), files, looked, parsed, unchanged, ms: Math.round(performance.now() - started) };
    if (issues.length > 0) {
      host.log.error({ ...summary, issues: this.current.errors.slice(0, LOG_NAMES), issueCount: issues.length, ...zoneSummary(keptPrevious, 'keptPrevious') }, 'zone reload found errors; the zones of those files keep their previous version');
      return { ok: false, zones: count, issues };
    }
    host.log.info({ ...summary, pools: host.poolCount() }, 'zones reloaded');
    return { ok: true, zones: count };
  }

  /** The directory holds no zone now, and nobody asked for that: keep serving what is served. */
  private refuseEmpty(at: string, trigger: string, served: number): ReloadResult {
    const message = `holds no zone now; refusing to stop serving all ${served} zone${served === 1 ? '' : 's'} (a failed mount?). To remove every zone on purpose, send SIGHUP after emptying it`;
    const issues: ZoneIssue[] = [{ file: this.host.zonesDir, message }];
    this.current = { at, trigger, ok: false, errors: issues.map(formatIssue), keptPrevious: [...this.host.served()].map((z) => z.label) };
    this.host.log.error({ trigger, dir: this.host.zonesDir, ...zoneSummary(this.current.keptPrevious) }, 'zone reload refused: the zones directory holds no zone; previous zones keep serving');
    return { ok: false, zones: served, issues };
  }

  /**
   * Served zones to carry over because their file now fails: not replaced by
   * a valid zone of the same origin or from the same file, and the file is
   * still there (a removed file removes its zone).
   */
  private previousOfBroken(fresh: readonly Zone[]): Zone[] {
    const origins = new Set(fresh.map((z) => z.originKey));
    const sources = new Set(fresh.map((z) => z.source));
    const kept: Zone[] = [];
    for (const served of this.host.served()) {
      const z = served.zone;
      if (origins.has(z.originKey) || sources.has(z.source)) continue;
      if (!fs.existsSync(z.source)) continue;
      kept.push(z);
    }
    return kept;
  }
}

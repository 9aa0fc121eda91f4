/** Builds a Zone from master-file text, for unit tests that write zones as zone files. */
import { parseMasterFile } from '../../src/zone/masterfile.ts';
import { parseNativeZone } from '../../src/zone/native.ts';
import { buildZone, type Zone } from '../../src/zone/zone.ts';
import { formatIssue } from '../../src/errors.ts';

export function zoneFromText(origin: string, text: string, opts: { maxAnswers?: Record<string, number>; minTtl?: number; maxTtl?: number } = {}): Zone {
  const parsed = parseMasterFile(text, { file: 'test.zone', origin, defaultTtl: 3600 });
  if (parsed.issues.length) throw new Error(parsed.issues.map(formatIssue).join('\n'));
  const nameOptions = new Map(Object.entries(opts.maxAnswers ?? {}).map(([n, m]) => [`${n}.${origin}`, { maxAnswers: m }]));
  const built = buildZone({
    origin,
    source: 'test.zone',
    records: parsed.records,
    ttlPolicy: { defaultTtl: 3600, minTtl: opts.minTtl ?? 0, maxTtl: opts.maxTtl ?? 0x7fffffff },
    nameOptions,
  });
  if (!built.zone) throw new Error(built.issues.map(formatIssue).join('\n'));
  return built.zone;
}

/** Parses native-format text as if it were `zones/<origin>.yaml`; master files it names come from `masterFiles`. */
export function parseNativeText(text: string, origin: string, masterFiles: Record<string, string> = {}) {
  return parseNativeZone(text, {
    file: `zones/${origin}.yaml`,
    defaultOrigin: origin,
    readMasterFile: (rel) => {
      const t = masterFiles[rel];
      if (t === undefined) throw Object.assign(new Error('missing'), { code: 'ENOENT' });
      return t;
    },
  });
}

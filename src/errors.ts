/**
 * Every error rrdns raises on purpose, with a stable code that logs, tests and
 * operators can match on. Messages are for humans; codes are the contract.
 */
export const ErrorCode = {
  CONFIG_INVALID: 'RRDNS_CONFIG_INVALID',
  ZONE_INVALID: 'RRDNS_ZONE_INVALID',
  ZONE_DIR_UNREADABLE: 'RRDNS_ZONE_DIR_UNREADABLE',
  ZONE_CONFLICT: 'RRDNS_ZONE_CONFLICT',
  LISTEN_FAILED: 'RRDNS_LISTEN_FAILED',
  WIRE_MALFORMED: 'RRDNS_WIRE_MALFORMED',
  SERVER_STATE: 'RRDNS_SERVER_STATE',
  /** The state directory or its file cannot be read, parsed or created (at start). */
  STATE_INVALID: 'RRDNS_STATE_INVALID',
  /** A change could not be written to the state directory (it was not applied). */
  STATE_WRITE_FAILED: 'RRDNS_STATE_WRITE_FAILED',
  /** A cluster setting cannot be used (an unreadable TLS or password file, the etcd client missing). */
  CLUSTER_CONFIG: 'RRDNS_CLUSTER_CONFIG',
  /** etcd did not answer (unreachable, partitioned, slower than --cluster-timeout); the instance goes on degraded. */
  CLUSTER_UNAVAILABLE: 'RRDNS_CLUSTER_UNAVAILABLE',
  /** Another live process is registered under this --cluster-instance (the start fails after waiting one lease TTL). */
  CLUSTER_INSTANCE_TAKEN: 'RRDNS_CLUSTER_INSTANCE_TAKEN',
  /** A zone has `type: icmp` checks and fping (which sends the echoes) is not installed. */
  ICMP_UNAVAILABLE: 'RRDNS_ICMP_UNAVAILABLE',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class RrdnsError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RrdnsError';
    this.code = code;
  }
}

/** One problem found in a zone source, located precisely enough to fix it. */
export interface ZoneIssue {
  /** File the problem is in, as given to the loader (relative paths stay relative). */
  file: string;
  /** 1-based line number, when known. */
  line?: number | undefined;
  /** Path inside the document, e.g. `records.www.A[2]`; empty for master-file lines. */
  path?: string | undefined;
  message: string;
}

/**
 * Issues kept per zone file: a file of a million bad lines must not cost a
 * million issue objects (or a million-line error); the rest are counted.
 */
export const MAX_ISSUES_PER_FILE = 1000;

/** Messages quote the text at fault; a megabyte-long token is cut to this many chars. */
export const MAX_ISSUE_MESSAGE_CHARS = 400;

export function shortMessage(message: string): string {
  return message.length > MAX_ISSUE_MESSAGE_CHARS ? `${message.slice(0, MAX_ISSUE_MESSAGE_CHARS)}… (${message.length - MAX_ISSUE_MESSAGE_CHARS} more chars)` : message;
}

/** The first MAX_ISSUES_PER_FILE issues (messages shortened), then one saying how many more there were. */
export function capIssues(issues: ZoneIssue[], file: string, dropped = 0): ZoneIssue[] {
  const extra = Math.max(0, issues.length - MAX_ISSUES_PER_FILE) + dropped;
  for (const i of issues.length > MAX_ISSUES_PER_FILE ? issues.slice(0, MAX_ISSUES_PER_FILE) : issues) i.message = shortMessage(i.message);
  if (extra === 0) return issues;
  const kept = issues.slice(0, MAX_ISSUES_PER_FILE);
  kept.push({ file, message: `${extra} more problem${extra === 1 ? '' : 's'} not listed` });
  return kept;
}

export function formatIssue(issue: ZoneIssue): string {
  const where = issue.line !== undefined ? `${issue.file}:${issue.line}` : issue.file;
  return issue.path ? `${where} ${issue.path}: ${issue.message}` : `${where}: ${issue.message}`;
}

/** A zone (or a directory of zones) that failed validation; lists every problem at once. */
export class ZoneValidationError extends RrdnsError {
  readonly issues: readonly ZoneIssue[];
  constructor(issues: readonly ZoneIssue[]) {
    super(
      ErrorCode.ZONE_INVALID,
      `${issues.length} zone error${issues.length === 1 ? '' : 's'}:\n` + issues.map((i) => '  ' + formatIssue(i)).join('\n'),
    );
    this.name = 'ZoneValidationError';
    this.issues = issues;
  }
}

/** Thrown by the query decoder; the server answers FORMERR (or drops) and never crashes. */
export class WireFormatError extends RrdnsError {
  constructor(message: string) {
    super(ErrorCode.WIRE_MALFORMED, message);
    this.name = 'WireFormatError';
  }
}

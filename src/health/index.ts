/**
 * The health-check engine: check definitions (zone-file schema), targets (one
 * per distinct probe), the probes, and the monitor that turns results into
 * measured up/down health. The DNS layer owns overrides and what to answer.
 */
export {
  CheckObjectSchema,
  CheckSchema,
  DEFAULT_USER_AGENT,
  MAX_BODY_BYTES,
  parseDuration,
  parseStatusSpec,
  statusAccepted,
  formatExpect,
  type CheckConfig,
  type CheckConfigInput,
  type StatusRange,
} from '../config/health-check.ts';
export { canonicalAddress, describeTarget, hostHeader, makeTarget, serverName, type CheckTarget } from './target.ts';
export { createChecker, describeError, type CheckOutcome, type Checker, type CheckerOptions } from './checkers.ts';
export { createWorkerChecker, type WorkerChecker, type WorkerCheckerOptions } from './worker-checker.ts';
export { nextSlot, spreadPhases } from './spread.ts';
export {
  HealthMonitor,
  realScheduler,
  type HealthMonitorDeps,
  type MemberHealth,
  type Override,
  type Scheduler,
  type TargetState,
  type Timer,
} from './monitor.ts';
export { ManualScheduler, flushPromises } from './manual-scheduler.ts';

/** The retention engine: pure planners, no I/O. See plan.ts and wal-horizon.ts. */
export { parseRetentionDuration } from "./duration.js";
export { RetentionPolicyError } from "./errors.js";
export {
  checkItemChains,
  checkPolicy,
  DEFAULT_POLICY,
  PERIOD_RULES,
  type PitrWindow,
  type PlannedItem,
  planRetention,
  type RetentionItem,
  type RetentionPlan,
  type RetentionPolicy,
  WINDOW_BASE_REASON,
  type WindowReport,
} from "./plan.js";
export {
  type BackupSpan,
  isWalKept,
  planWalHorizon,
  type SegmentRange,
  segmentPosition,
  type WalHorizon,
  type WalHorizonInput,
} from "./wal-horizon.js";
export { findWindowBase, restorableFrom, windowStart } from "./window-base.js";

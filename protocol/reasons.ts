// Decision reason codes: stable numbers (journal records and event batches
// carry the number) with stable names (logs, CSV export, the central's UI).
// Never renumber; append only.

export const Reason = {
  granted: 0,
  unknown_credential: 1,
  revoked: 2,
  subject_suspended: 3,
  institution_suspended: 4,
  industry_suspended: 5,
  outside_validity: 6,
  outside_schedule: 7,
  wrong_line: 8,
  wrong_direction: 9,
  wrong_lane: 10,
  passback_violation: 11,
  whitelist_stale: 12,
  whitelist_expired: 13,
  clock_unsynced: 14,
  journal_full: 15,
  lockdown: 16,
  emergency_release: 17,
  no_grant: 18,
  level_not_allowed: 19,
  /** The lane's outputs or sensors are faulted and its line fails closed. */
  lane_fault: 20,
  /** The same credential already holds a grant on this lane that is not used yet (a repeat tap); refused. */
  already_pending: 21,
  /** The lane already holds its maximum of outstanding grants (firmware/core/gate-controller.ts). */
  lane_busy: 22,
} as const;

export type ReasonName = keyof typeof Reason;
export type ReasonCode = (typeof Reason)[ReasonName];

export const REASON_NAMES: readonly ReasonName[] = (() => {
  const names: ReasonName[] = [];
  for (const [name, code] of Object.entries(Reason)) names[code] = name as ReasonName;
  return names;
})();

export function reasonName(code: number): ReasonName | 'unknown' {
  return REASON_NAMES[code] ?? 'unknown';
}

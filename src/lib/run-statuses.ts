// The run statuses, in state-machine order (sql/ledger/runs.sql decides the transitions; this list
// only names them for argument checks and filters). No node: imports: the web page uses it too.
export const RUN_STATUSES = [
  "pending",
  "planned",
  "running",
  "retrying",
  "succeeded",
  "failed",
  "halted",
  "cancelled",
] as const;

-- The change being developed: edit sql/, include each changed file here (--!include <path under sql/>),
-- add table changes as plain SQL, and commit it with `npm run gm -- commit -m "..."` (docs/CONVENTIONS.md).

-- Issue 14: step transactions never NOTIFY (PostgreSQL serialises NOTIFYing commits
-- cluster-wide across the WAL flush); the worker announces steps after their commit, batched, and
-- makes one statement per step (advance_attempt).
drop trigger if exists tg_trace_steps__notify on runproof.trace_steps;
drop function if exists runproof_private.tg_trace_steps__notify();
delete from runproof_private.guard_descriptions where table_name = 'trace_steps' and trigger_name = 'tg_trace_steps__notify';
--!include execution/notify.sql
--!include execution/record_step.sql
--!include execution/advance.sql
--!include ledger/runs.sql

--!include api/access.sql

-- The change being developed: edit sql/, include each changed file here (--!include <path under sql/>),
-- add table changes as plain SQL, and commit it with `npm run gm -- commit -m "..."` (docs/CONVENTIONS.md).

-- Issue 13 (PostgreSQL 15, owner deployments): the per-row look-ups of an append keep index plans
-- (set-based appends were quadratic on PostgreSQL 15: bench/append-scaling.ts).
--!include ledger/policy_decisions.sql
--!include ledger/trace_steps.sql
--!include ledger/payloads.sql

-- Every key of a tenant table includes tenant_id (test/catalog-tenant-keys.test.ts: the path to
-- distributing by tenant_id stays open). A key's hash stays unique per tenant; the look-up by hash
-- alone (runproof_private.authenticate) has an index of its own.
alter table runproof_private.api_keys drop constraint if exists api_keys_key_hash_key;
do $$
begin
  if not exists (select 1 from pg_constraint where conname = 'api_keys_tenant_id_key_hash_key'
                  and conrelid = 'runproof_private.api_keys'::regclass) then
    alter table runproof_private.api_keys add constraint api_keys_tenant_id_key_hash_key unique (tenant_id, key_hash);
  end if;
end
$$;
create index if not exists api_keys_key_hash_idx on runproof_private.api_keys (key_hash);
comment on index runproof_private.api_keys_key_hash_idx is 'Serves authenticating a key by its hash (runproof_private.authenticate), which knows no tenant yet.';

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

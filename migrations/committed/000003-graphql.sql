--! Previous: sha1:44f10111912a406e412d2ec97a0ddfb62324a1cb
--! Hash: sha1:a1579b3b6c44f497562dd9d26a21e2f9460f3969
--! Message: graphql

-- RunProof GraphQL API (PostGraphile): the authenticator's access to API keys, and computed
-- columns that the schema exposes on runs, traces and steps (proofs, hex hashes, progress).
-- Idempotent: graphile-migrate re-runs current.sql on every save in `watch` mode.

-- runproof_authenticator is NOINHERIT, so runproof_tenant's USAGE on runproof_private does not
-- reach it; it needs its own to call runproof_private.authenticate (its only grant in there).
grant usage on schema runproof_private to runproof_authenticator;

-- GraphQL filters runs by origin (condition: {originSystemId: ...}); without an index PostGraphile
-- would not offer the filter. origin_system_id never changes, so this costs only at insert.
create index if not exists runs_tenant_origin_idx on runproof.runs (tenant_id, origin_system_id);
comment on index runproof.runs_tenant_origin_idx is 'Serves filtering a tenant''s runs by origin_system_id (GraphQL runs(condition: {originSystemId})).';

--------------------------------------------------------------------------------
-- Proofs
--------------------------------------------------------------------------------

create or replace function runproof.runs_proof(r runproof.runs) returns runproof.proof
  language sql stable
  set search_path = pg_catalog
  as $$ select runproof.run_proof(r.tenant_id, r.id) $$;
comment on function runproof.runs_proof(runproof.runs) is
  'Verifies the run now (runproof.run_proof): recomputes every hash of every trace from the stored columns and says whether the record is intact: VERIFIED, IN_PROGRESS, TAMPERED, BROKEN or NOT_FOUND, with the counts, the run root, and the first bad step and the reason.';

create or replace function runproof.traces_proof(t runproof.traces) returns runproof.proof
  language sql stable
  set search_path = pg_catalog
  as $$ select runproof.verify_trace(t.id) $$;
comment on function runproof.traces_proof(runproof.traces) is
  'Verifies this trace now (runproof.verify_trace): recomputes its chain from the stored columns: VERIFIED, IN_PROGRESS, TAMPERED, BROKEN or NOT_FOUND, with the first bad step and the reason.';

--------------------------------------------------------------------------------
-- Hashes as hex (the form proofs and bundles use)
--------------------------------------------------------------------------------

create or replace function runproof.runs_root_hash(r runproof.runs) returns text
  language sql stable
  set search_path = pg_catalog
  as $$ select encode(r.root_hash, 'hex') $$;
comment on function runproof.runs_root_hash(runproof.runs) is
  'Set once, when the run ends: the run root over its traces'' roots, lower-case hex (compare with proof.rootHash).';

create or replace function runproof.traces_root_hash(t runproof.traces) returns text
  language sql stable
  set search_path = pg_catalog
  as $$ select encode(t.root_hash, 'hex') $$;
comment on function runproof.traces_root_hash(runproof.traces) is
  'Set once at the seal: the last step_hash (the genesis hash for an empty trace), lower-case hex.';

create or replace function runproof.trace_steps_prev_hash(s runproof.trace_steps) returns text
  language sql stable
  set search_path = pg_catalog
  as $$ select encode(s.prev_hash, 'hex') $$;
comment on function runproof.trace_steps_prev_hash(runproof.trace_steps) is
  'The previous step''s step_hash, or the trace''s genesis hash for step 0, lower-case hex (set by the database).';

create or replace function runproof.trace_steps_step_hash(s runproof.trace_steps) returns text
  language sql stable
  set search_path = pg_catalog
  as $$ select encode(s.step_hash, 'hex') $$;
comment on function runproof.trace_steps_step_hash(runproof.trace_steps) is
  'sha256(prev_hash || sha256(canonical content)), lower-case hex (set by the database).';

--------------------------------------------------------------------------------
-- Progress, for clients that poll
--------------------------------------------------------------------------------

create or replace function runproof.runs_plan_step_count(r runproof.runs) returns integer
  language sql stable
  set search_path = pg_catalog
  as $$ select case when jsonb_typeof(r.plan -> 'steps') = 'array' then jsonb_array_length(r.plan -> 'steps') end $$;
comment on function runproof.runs_plan_step_count(runproof.runs) is
  'How many steps the plan has (NULL while the run is pending, before it is planned). Progress is next_plan_step out of this.';

create or replace function runproof.runs_is_finished(r runproof.runs) returns boolean
  language sql stable
  set search_path = pg_catalog
  as $$ select r.status in ('succeeded', 'failed', 'halted', 'cancelled') $$;
comment on function runproof.runs_is_finished(runproof.runs) is
  'Whether the run reached a final status (succeeded, failed, halted or cancelled): nothing about it changes any more, so a poller can stop.';

grant execute on function
  runproof.runs_proof(runproof.runs), runproof.traces_proof(runproof.traces),
  runproof.runs_root_hash(runproof.runs), runproof.traces_root_hash(runproof.traces),
  runproof.trace_steps_prev_hash(runproof.trace_steps), runproof.trace_steps_step_hash(runproof.trace_steps),
  runproof.runs_plan_step_count(runproof.runs), runproof.runs_is_finished(runproof.runs)
  to runproof_tenant;

-- Computed columns PostGraphile exposes on runs, traces and steps: proofs, hashes as hex, progress,
-- and the steps' payloads (or their erasure).

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

create or replace function runproof.runs_root_hash(r runproof.runs) returns text
  language sql stable
  set search_path = pg_catalog
  as $$ select encode(r.root_hash, 'hex') $$;
comment on function runproof.runs_root_hash(runproof.runs) is
  'Set once, when the run ends: the run root, sha256 of the run''s seal text (docs/proof-format.md section 8), lower-case hex (compare with proof.rootHash).';

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

--------------------------------------------------------------------------------
-- Step payloads: stored apart from the chain (docs/proof-format.md section 5), NULL once erased
--------------------------------------------------------------------------------

create or replace function runproof.trace_steps_input(s runproof.trace_steps) returns jsonb
  language sql stable
  set search_path = pg_catalog
  as $$ select p.input from runproof.step_payloads p where p.tenant_id = s.tenant_id and p.trace_id = s.trace_id and p.step_index = s.step_index $$;
comment on function runproof.trace_steps_input(runproof.trace_steps) is
  'The skill''s input, secrets redacted. NULL when the step''s payloads were erased (see erasure); the step''s hash still covers it through a salted commitment.';

create or replace function runproof.trace_steps_output(s runproof.trace_steps) returns jsonb
  language sql stable
  set search_path = pg_catalog
  as $$ select p.output from runproof.step_payloads p where p.tenant_id = s.tenant_id and p.trace_id = s.trace_id and p.step_index = s.step_index $$;
comment on function runproof.trace_steps_output(runproof.trace_steps) is
  'The skill''s output, secrets redacted (NULL when it failed or was denied, or when the step''s payloads were erased: see erasure).';

create or replace function runproof.trace_steps_error(s runproof.trace_steps) returns text
  language sql stable
  set search_path = pg_catalog
  as $$ select p.error from runproof.step_payloads p where p.tenant_id = s.tenant_id and p.trace_id = s.trace_id and p.step_index = s.step_index $$;
comment on function runproof.trace_steps_error(runproof.trace_steps) is
  'The error, when the step failed (NULL otherwise, or when the step''s payloads were erased: see erasure).';

create or replace function runproof.trace_steps_erasure(s runproof.trace_steps) returns runproof.payload_erasures
  language sql stable
  set search_path = pg_catalog
  as $$
    select e from runproof.payload_erasure_steps x
      join runproof.payload_erasures e on e.tenant_id = x.tenant_id and e.id = x.erasure_id
     where x.tenant_id = s.tenant_id and x.trace_id = s.trace_id and x.step_index = s.step_index
  $$;
comment on function runproof.trace_steps_erasure(runproof.trace_steps) is
  'When the step''s payloads (input, output, error) were erased: the erasure (who, when, why); NULL while they are kept.';

create or replace function runproof.runs_payload_erasures(r runproof.runs) returns setof runproof.payload_erasures
  language sql stable
  set search_path = pg_catalog
  as $$
    select e.* from runproof.payload_erasures e
     where e.tenant_id = r.tenant_id
       and exists (select 1 from runproof.payload_erasure_steps x where x.tenant_id = e.tenant_id and x.erasure_id = e.id and x.run_id = r.id)
     order by e.erased_at, e.id
  $$;
comment on function runproof.runs_payload_erasures(runproof.runs) is
  'The erasures of this run''s step payloads, oldest first.';

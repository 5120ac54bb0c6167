--! Previous: sha1:85a255281d494856b2efe93ca7ba4aa98330763e
--! Hash: sha1:f5dad5ac36aa280edff5ae440bacea1793e5633f
--! Message: proof format 2 and GraphQL tenant limits

-- Proof format 2 (docs/proof-format.md): every field a reader relies on is inside a hash (the
-- run's outcome in its seal, each trace's status and metadata in its seal, each step's whole policy
-- decision, incidents), payloads are committed to by salted hashes and stored apart so they can be
-- erased, and completeness (every plan step, in order; attempts; progress; cost) is checked.
-- Format 1 is not converted: nothing is deployed before 1.0, and a ledger that holds runs refuses
-- this migration instead of mixing formats.
do $$
begin
  if exists (select 1 from runproof.runs) then
    raise exception 'this database holds runs recorded in proof format 1, which format 2 does not convert'
      using errcode = 'RPFMT',
            hint = 'nothing is deployed before 1.0: reset the development database (npm run gm -- reset --erase, or rm -rf .data) and migrate again';
  end if;
end
$$;

-- Steps: the payloads move to runproof.step_payloads; the step holds their commitments and the
-- hash of its policy decision.
alter table runproof.trace_steps drop column input, drop column output, drop column error;
alter table runproof.trace_steps
  add column decision_hash bytea not null check (octet_length(decision_hash) = 32),
  add column input_commitment bytea not null check (octet_length(input_commitment) = 32),
  add column output_commitment bytea check (octet_length(output_commitment) = 32),
  add column error_commitment bytea check (octet_length(error_commitment) = 32),
  add constraint trace_steps_error_iff_failed check ((status = 'failed') = (error_commitment is not null));
comment on column runproof.trace_steps.decision_hash is 'sha256 of the policy decision''s canonical text (set by the database): the decision row is covered by the step''s hash.';
comment on column runproof.trace_steps.input_commitment is 'The salted commitment to the step''s input (docs/proof-format.md section 5); the input itself is in runproof.step_payloads.';
comment on column runproof.trace_steps.output_commitment is 'The salted commitment to the step''s output, NULL when it has none.';
comment on column runproof.trace_steps.error_commitment is 'The salted commitment to the step''s error, NULL when it did not fail.';
comment on column runproof.trace_steps.step_hash is 'sha256(prev_hash || sha256(canonical content)) (set by the database; docs/proof-format.md section 3).';

create table runproof.step_payloads (
  tenant_id uuid not null,
  run_id uuid not null,
  trace_id uuid not null,
  step_index integer not null,
  input jsonb not null,
  input_salt bytea not null check (octet_length(input_salt) = 32),
  output jsonb,
  output_salt bytea check (octet_length(output_salt) = 32),
  error text,
  error_salt bytea check (octet_length(error_salt) = 32),
  primary key (tenant_id, trace_id, step_index),
  foreign key (tenant_id, trace_id, step_index) references runproof.trace_steps (tenant_id, trace_id, step_index),
  constraint step_payloads_output_salted check ((output is null) = (output_salt is null)),
  constraint step_payloads_error_salted check ((error is null) = (error_salt is null))
);
comment on table runproof.step_payloads is 'The input, output and error of each step, secrets redacted, each with its salt. Apart from the chain so that they can be erased: the step holds salted commitments to them. Never changed; deleted only by runproof.erase_payloads, which records the erasure.';
comment on column runproof.step_payloads.tenant_id is 'The tenant that owns the run.';
comment on column runproof.step_payloads.run_id is 'The run.';
comment on column runproof.step_payloads.trace_id is 'The trace (attempt).';
comment on column runproof.step_payloads.step_index is 'The step.';
comment on column runproof.step_payloads.input is 'The skill''s input, secrets redacted.';
comment on column runproof.step_payloads.input_salt is '32 random bytes: the commitment is sha256("runproof.payload/2|input|" || salt || input text).';
comment on column runproof.step_payloads.output is 'The skill''s output, secrets redacted (NULL when it failed or was denied).';
comment on column runproof.step_payloads.output_salt is 'The output''s salt (NULL when there is no output).';
comment on column runproof.step_payloads.error is 'The error, when the step failed.';
comment on column runproof.step_payloads.error_salt is 'The error''s salt (NULL when there is no error).';

create table runproof.payload_erasures (
  tenant_id uuid not null references runproof.tenants,
  id uuid not null default gen_random_uuid(),
  erased_at timestamptz not null default now(),
  erased_by text not null check (length(erased_by) between 1 and 500),
  reason text not null check (not runproof_private.is_blank(reason) and length(reason) <= 2000),
  scope jsonb not null check (jsonb_typeof(scope) = 'object'),
  step_count integer not null check (step_count >= 0),
  primary key (tenant_id, id)
);
comment on table runproof.payload_erasures is 'Erasures of step payloads (runproof.erase_payloads, and the retention task): append-only. Proofs count the erased steps and stay VERIFIED.';
comment on column runproof.payload_erasures.tenant_id is 'The tenant whose payloads were erased.';
comment on column runproof.payload_erasures.id is 'The erasure id.';
comment on column runproof.payload_erasures.erased_at is 'When.';
comment on column runproof.payload_erasures.erased_by is 'Who: the database roles of the session, or the tenant for a GraphQL request.';
comment on column runproof.payload_erasures.reason is 'Why, as given (for the retention task: retention).';
comment on column runproof.payload_erasures.scope is 'What was asked: {"run_id": ...}, {"older_than": ...} or {"retention": ...}.';
comment on column runproof.payload_erasures.step_count is 'How many steps'' payloads were erased.';

create table runproof.payload_erasure_steps (
  tenant_id uuid not null,
  erasure_id uuid not null,
  run_id uuid not null,
  trace_id uuid not null,
  step_index integer not null,
  primary key (tenant_id, trace_id, step_index),
  foreign key (tenant_id, erasure_id) references runproof.payload_erasures (tenant_id, id),
  foreign key (tenant_id, trace_id, step_index) references runproof.trace_steps (tenant_id, trace_id, step_index)
);
create index payload_erasure_steps_erasure_idx on runproof.payload_erasure_steps (tenant_id, erasure_id);
create index payload_erasure_steps_run_idx on runproof.payload_erasure_steps (tenant_id, run_id);
comment on table runproof.payload_erasure_steps is 'Which steps each erasure erased (a step is erased once). Append-only.';
comment on column runproof.payload_erasure_steps.tenant_id is 'The tenant.';
comment on column runproof.payload_erasure_steps.erasure_id is 'The erasure.';
comment on column runproof.payload_erasure_steps.run_id is 'The run of the step.';
comment on column runproof.payload_erasure_steps.trace_id is 'The trace of the step.';
comment on column runproof.payload_erasure_steps.step_index is 'The step whose payloads were erased.';
comment on index runproof.payload_erasure_steps_erasure_idx is 'Serves listing an erasure''s steps.';
comment on index runproof.payload_erasure_steps_run_idx is 'Serves a run''s erasures (Run.payloadErasures).';

alter table runproof.tenants add column payload_retention interval check (payload_retention > interval '0');
comment on column runproof.tenants.payload_retention is 'How long step payloads are kept after their run finished; NULL keeps them. The worker''s erase_expired_payloads task erases what is older.';
create index runs_tenant_finished_idx on runproof.runs (tenant_id, finished_at) where finished_at is not null;
comment on index runproof.runs_tenant_finished_idx is 'Serves erasing payloads by age (erase_payloads older_than, payload retention).';

-- Traces and runs carry their seal text; the run root is the hash of the run's seal.
alter table runproof.traces
  add column seal bytea,
  add column seal_hash bytea check (octet_length(seal_hash) = 32),
  drop constraint traces_sealed_iff_done,
  add constraint traces_sealed_iff_done check (
    (status = 'running') = (completed_at is null)
    and (status = 'running') = (step_count is null)
    and (status = 'running') = (root_hash is null)
    and (status = 'running') = (seal is null)
    and (status = 'running') = (seal_hash is null));
comment on column runproof.traces.seal is 'Set once at the seal: the trace''s canonical text (docs/proof-format.md section 6).';
comment on column runproof.traces.seal_hash is 'Set once at the seal: sha256 of seal, listed in the run''s seal.';
alter table runproof.runs
  add column seal bytea,
  drop constraint runs_seal_when_terminal,
  add constraint runs_seal_when_terminal check (
    (trace_count is null and root_hash is null and seal is null)
    or (status in ('succeeded', 'failed', 'halted', 'cancelled') and trace_count is not null and root_hash is not null and seal is not null));
comment on column runproof.runs.seal is 'Set once, when the run ends: its seal text (docs/proof-format.md section 8).';
comment on column runproof.runs.root_hash is 'Set once, when the run ends: the run root, sha256 of seal.';

alter type runproof.proof add attribute proof_format integer, add attribute erased_steps integer;
comment on column runproof.proof.proof_format is 'The proof format (docs/proof-format.md): 2.';
comment on column runproof.proof.erased_steps is 'How many of the examined steps had their payloads erased (runproof.erase_payloads): still covered by their commitments.';
comment on column runproof.proof.root_hash is 'The root recomputed from the rows, hex (docs/proof-format.md section 8): the chain root of a trace, or the run root. For a sealed, intact run it equals the stored root.';

drop function if exists runproof_private.run_root_hash(uuid, uuid, bytea[]);
drop function if exists runproof_private.chain_faults(uuid, uuid, bytea, integer);
drop function if exists runproof_private.chain_faults_parallel(uuid, uuid, bytea);

--! Included proof/canonical.sql
-- The bytes that are hashed (proof format 2): the canonical text of a step, a policy decision, a
-- trace, an incident, a run's content and its seal; payload commitments; and how they chain into
-- step hashes, trace roots and the run root. docs/proof-format.md is the normative description; the
-- offline verifier (src/lib/offline-verify.ts) recomputes all of it from a bundle.

create or replace function runproof_private.genesis_hash(p_tenant_id uuid, p_run_id uuid, p_trace_id uuid) returns bytea
  language sql stable parallel safe
  as $$ select sha256(convert_to('runproof.genesis/2|' || p_tenant_id || '|' || p_run_id || '|' || p_trace_id, 'UTF8')) $$;
comment on function runproof_private.genesis_hash(uuid, uuid, uuid) is
  'The prev_hash of a trace''s first step: binds the format version, tenant, run and trace, so steps cannot move between traces.';

-- The canonical texts are written with format() rather than jsonb_build_array(...)::text: the same
-- text, without building and re-printing a jsonb value. uuids and integers print themselves; every
-- text, timestamp and numeric goes through to_json(), which escapes and formats exactly as jsonb
-- does; jsonb columns print with their own output function (what jsonb_build_array embeds).
-- Timestamps are written in UTC ("at time zone 'UTC'"), so no session setting changes the text.
-- These are plain SQL functions without SET clauses, declared no stricter than their bodies
-- (convert_to and format are stable), so that Postgres inlines them into the verifier's queries:
-- a SET clause, or an immutable declaration over a stable body, costs a function call per step.

create or replace function runproof_private.step_canonical(s runproof.trace_steps) returns bytea
  language sql stable parallel safe
  as $$
    select convert_to(format(
      '["runproof.step/2", "%s", "%s", "%s", %s, %s, %s, %s, %s, "%s", %s, %s, %s, %s, %s, %s, %s, %s, %s, %s]',
      s.tenant_id, s.run_id, s.trace_id, s.step_index, s.plan_step,
      to_json(s.skill), to_json(s.status), to_json(s.policy_decision),
      encode(s.decision_hash, 'hex'),
      coalesce('"' || encode(s.input_commitment, 'hex') || '"', 'null'),
      coalesce('"' || encode(s.output_commitment, 'hex') || '"', 'null'),
      coalesce('"' || encode(s.error_commitment, 'hex') || '"', 'null'),
      to_json(s.started_at at time zone 'UTC'), to_json(s.finished_at at time zone 'UTC'),
      to_json(s.duration_ms), to_json(s.cost_cents), to_json(s.source), to_json(s.level),
      to_json(s.recorded_at at time zone 'UTC')), 'UTF8')
  $$;
comment on function runproof_private.step_canonical(runproof.trace_steps) is
  'The canonical text of a step (runproof.step/2, docs/proof-format.md section 3): a fixed-order JSON array of its content, with its policy decision''s hash and its payloads'' commitments. These exact bytes are hashed and exported in bundles.';

create or replace function runproof_private.step_hash(p_prev_hash bytea, p_canonical bytea) returns bytea
  language sql immutable strict parallel safe
  as $$ select sha256(p_prev_hash || sha256(p_canonical)) $$;
comment on function runproof_private.step_hash(bytea, bytea) is 'step_hash = sha256(prev_hash || sha256(canonical content)).';

create or replace function runproof_private.decision_canonical(d runproof.policy_decisions) returns bytea
  language sql stable parallel safe
  as $$
    select convert_to(format(
      '["runproof.decision/2", "%s", "%s", "%s", %s, %s, %s, %s, %s, %s, %s, %s, %s]',
      d.tenant_id, d.run_id, d.trace_id, d.step_index, d.plan_step,
      to_json(d.skill), to_json(d.decision), to_json(d.rule), to_json(d.reason),
      coalesce(to_json(d.budget_cents)::text, 'null'), coalesce(to_json(d.spent_cents)::text, 'null'),
      to_json(d.decided_at at time zone 'UTC')), 'UTF8')
  $$;
comment on function runproof_private.decision_canonical(runproof.policy_decisions) is
  'The canonical text of a policy decision (runproof.decision/2, docs/proof-format.md section 4). Its sha256 is put into the step it decided, so the whole decision row is covered by the step''s hash.';

create or replace function runproof_private.payload_commitment(p_kind text, p_salt bytea, p_text text) returns bytea
  -- stable, not immutable: convert_to is stable, and Postgres inlines a SQL function only when its
  -- declared volatility is no stricter than its body's.
  language sql stable parallel safe
  -- NULL text gives NULL (sha256 is strict); each parameter is used once, so Postgres inlines it.
  as $$ select sha256(convert_to('runproof.payload/2|' || p_kind || '|', 'UTF8') || p_salt || convert_to(p_text, 'UTF8')) $$;
comment on function runproof_private.payload_commitment(text, bytea, text) is
  'A payload''s salted commitment: sha256("runproof.payload/2|<kind>|" || salt || UTF-8 text), NULL for an absent payload (docs/proof-format.md section 5). Without the salt it says nothing about the value.';

create or replace function runproof_private.random_salt() returns bytea
  language sql volatile parallel safe
  as $$ select decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex') $$;
comment on function runproof_private.random_salt() is
  'A payload salt: 32 bytes, 244 of their bits from the server''s strong random source (two version-4 UUIDs).';

create or replace function runproof_private.trace_canonical(t runproof.traces) returns bytea
  language sql stable parallel safe
  as $$
    select convert_to(format(
      '["runproof.trace/2", "%s", "%s", "%s", %s, %s, %s, %s, %s, %s, %s]',
      t.tenant_id, t.run_id, t.id, t.attempt, to_json(t.status), to_json(t.started_at at time zone 'UTC'),
      coalesce(to_json(t.completed_at at time zone 'UTC')::text, 'null'),
      coalesce(t.step_count::text, 'null'),
      coalesce('"' || encode(t.root_hash, 'hex') || '"', 'null'),
      t.metadata), 'UTF8')
  $$;
comment on function runproof_private.trace_canonical(runproof.traces) is
  'The canonical text of a trace (runproof.trace/2, docs/proof-format.md section 6): its attempt, status, times, step count, chain root and metadata. Stored as the trace''s seal when it ends.';

create or replace function runproof_private.incident_canonical(i runproof.incidents) returns bytea
  language sql stable parallel safe
  as $$
    select convert_to(format(
      '["runproof.incident/2", "%s", "%s", "%s", %s, %s, %s, %s, %s, %s]',
      i.tenant_id, i.id, i.run_id, coalesce('"' || i.trace_id || '"', 'null'),
      to_json(i.kind), to_json(i.severity), to_json(i.message), i.details,
      to_json(i.created_at at time zone 'UTC')), 'UTF8')
  $$;
comment on function runproof_private.incident_canonical(runproof.incidents) is
  'The canonical text of an incident (runproof.incident/2, docs/proof-format.md section 8). Its sha256 is listed in the run''s seal.';

create or replace function runproof_private.run_canonical(r runproof.runs) returns bytea
  language sql stable parallel safe
  as $$
    select convert_to(format(
      '["runproof.run/2", "%s", "%s", "%s", %s, %s, %s, %s, %s, %s]',
      r.tenant_id, r.id, r.agent_id, to_json(r.goal), to_json(r.origin_system_id),
      coalesce(r.plan::text, 'null'), coalesce(to_json(r.idempotency_key)::text, 'null'),
      r.max_attempts, to_json(r.created_at at time zone 'UTC')), 'UTF8')
  $$;
comment on function runproof_private.run_canonical(runproof.runs) is
  'The canonical text of a run''s content (runproof.run/2, docs/proof-format.md section 7): tenant, agent, goal, origin, plan, idempotency key, max_attempts and creation time.';

create or replace function runproof_private.run_seal_canonical(r runproof.runs) returns bytea
  language sql stable parallel safe
  as $$
    select convert_to(format(
      '["runproof.run-seal/2", "%s", "%s", "%s", %s, %s, %s, %s, %s, %s, %s, %s, [%s], [%s]]',
      r.tenant_id, r.id, encode(sha256(runproof_private.run_canonical(r)), 'hex'),
      to_json(r.status), coalesce(to_json(r.error)::text, 'null'), r.attempts, r.next_plan_step, to_json(r.cost_cents),
      coalesce(to_json(r.planned_at at time zone 'UTC')::text, 'null'),
      coalesce(to_json(r.started_at at time zone 'UTC')::text, 'null'),
      coalesce(to_json(r.finished_at at time zone 'UTC')::text, 'null'),
      (select string_agg(coalesce('"' || encode(t.seal_hash, 'hex') || '"', 'null'), ', ' order by t.attempt, t.id)
         from runproof.traces t where t.tenant_id = r.tenant_id and t.run_id = r.id),
      (select string_agg('"' || encode(sha256(runproof_private.incident_canonical(i)), 'hex') || '"', ', ' order by i.created_at, i.id)
         from runproof.incidents i where i.tenant_id = r.tenant_id and i.run_id = r.id)), 'UTF8')
  $$;
comment on function runproof_private.run_seal_canonical(runproof.runs) is
  'The canonical text of a run''s seal (runproof.run-seal/2, docs/proof-format.md section 8): its content hash, outcome (status, error, attempts, progress, cost, times), its traces'' seal hashes in attempt order and its incidents'' hashes. Computed over the rows as they are; stored as the run''s seal when it ends.';

create or replace function runproof_private.run_root_hash(r runproof.runs) returns bytea
  language sql stable parallel safe
  as $$ select sha256(runproof_private.run_seal_canonical(r)) $$;
comment on function runproof_private.run_root_hash(runproof.runs) is
  'A run''s root: sha256 of its seal text, recomputed from the rows as they are (for a sealed, intact run it equals runs.root_hash).';
--! EndIncluded proof/canonical.sql
--! Included ledger/plan.sql
-- A run's plan is checked when it is stored, in SQL, whoever stores it: its shape and size, that
-- it names only registered, enabled skills, that each step's input fits its skill's registered
-- input schema, and that it holds only numbers a JavaScript number holds exactly (what the worker
-- runs is what was recorded). Once stored it never changes. A run cannot start without a valid
-- plan (the table's runs_plan_before_start).

create or replace function runproof_private.inexact_number(p jsonb, p_path text default '') returns text
  language plpgsql immutable parallel safe
  set search_path = pg_catalog
  -- float8 to text is then the shortest text that reads back as the same double.
  set extra_float_digits = 1
  as $$
declare
  v_n numeric;
  v_key text;
  v_value jsonb;
  v_i integer := 0;
  v_found text;
begin
  case jsonb_typeof(p)
    when 'number' then
      v_n := (p #>> '{}')::numeric;
      -- Outside the doubles' range (or below the smallest one), no double holds the value; inside
      -- it, the value must read back unchanged from the nearest double.
      if v_n <> 0 and (abs(v_n) < 4.9406564584124654e-324 or abs(v_n) > 1.7976931348623157e308
                       or v_n <> (v_n::float8)::text::numeric) then
        return coalesce(nullif(p_path, ''), '(the plan)') || ' = '
          || case when length(p #>> '{}') > 40 then left(p #>> '{}', 24) || format('... (%s characters)', length(p #>> '{}'))
                  else p #>> '{}' end;
      end if;
    when 'object' then
      for v_key, v_value in select e.key, e.value from jsonb_each(p) e loop
        v_found := runproof_private.inexact_number(v_value, p_path || '.' || v_key);
        if v_found is not null then
          return v_found;
        end if;
      end loop;
    when 'array' then
      for v_value in select e.value from jsonb_array_elements(p) e loop
        v_found := runproof_private.inexact_number(v_value, p_path || '[' || v_i || ']');
        if v_found is not null then
          return v_found;
        end if;
        v_i := v_i + 1;
      end loop;
    else
      null;
  end case;
  return null;
end
$$;
comment on function runproof_private.inexact_number(jsonb, text) is
  'The first number in a JSON value (as "path = number") that no IEEE 754 double holds exactly, or NULL. The worker and its skills run on JavaScript numbers: such a number would run as another value than the one recorded.';

create or replace function runproof_private.validate_plan(p_plan jsonb) returns void
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_step jsonb;
  v_i integer := 0;
  v_skill text;
  v_key text;
  v_schema jsonb;
  v_problem text;
begin
  if p_plan is null then
    return;
  end if;
  if jsonb_typeof(p_plan) <> 'object' then
    raise exception 'plan must be a JSON object, got %', jsonb_typeof(p_plan)
      using errcode = 'RPPLN', hint = 'pass {"version": 1, "steps": [{"skill": "...", "input": {...}}]}';
  end if;
  if octet_length(p_plan::text) > 1048576 then
    raise exception 'plan is % bytes; at most 1 MiB is allowed', octet_length(p_plan::text)
      using errcode = 'RPPLN', hint = 'keep large data out of the plan: have a step fetch it';
  end if;
  for v_key in select jsonb_object_keys(p_plan) loop
    if v_key not in ('version', 'planner', 'steps', 'notes') then
      raise exception 'plan has unknown key %', quote_literal(v_key)
        using errcode = 'RPPLN', hint = 'a plan has the keys version, planner, steps and notes';
    end if;
  end loop;
  if p_plan -> 'version' is distinct from '1'::jsonb then
    raise exception 'plan version must be 1'
      using errcode = 'RPPLN', hint = 'set "version": 1';
  end if;
  if p_plan ? 'planner' and jsonb_typeof(p_plan -> 'planner') <> 'string' then
    raise exception 'plan planner must be a string' using errcode = 'RPPLN', hint = 'name the planner, e.g. "builtin"';
  end if;
  if jsonb_typeof(p_plan -> 'steps') is distinct from 'array' or jsonb_array_length(p_plan -> 'steps') = 0 then
    raise exception 'plan must have a non-empty "steps" array'
      using errcode = 'RPPLN', hint = 'add at least one step: {"skill": "...", "input": {...}}';
  end if;
  if jsonb_array_length(p_plan -> 'steps') > 1000 then
    raise exception 'plan has % steps; at most 1000 are allowed', jsonb_array_length(p_plan -> 'steps')
      using errcode = 'RPPLN', hint = 'split the work into several runs';
  end if;
  for v_step in select value from jsonb_array_elements(p_plan -> 'steps') loop
    if jsonb_typeof(v_step) <> 'object' then
      raise exception 'plan step % must be an object', v_i
        using errcode = 'RPPLN', hint = 'each step is {"skill": "...", "input": {...}}';
    end if;
    for v_key in select jsonb_object_keys(v_step) loop
      if v_key not in ('skill', 'input', 'title', 'timeout_ms') then
        raise exception 'plan step % has unknown key %', v_i, quote_literal(v_key)
          using errcode = 'RPPLN', hint = 'a step has the keys skill, input, title and timeout_ms';
      end if;
    end loop;
    if jsonb_typeof(v_step -> 'skill') is distinct from 'string' then
      raise exception 'plan step % has no skill name', v_i
        using errcode = 'RPPLN', hint = 'set "skill" to a registered skill (select name from runproof.skills)';
    end if;
    v_skill := v_step ->> 'skill';
    if not exists (select 1 from runproof.skills s where s.name = v_skill and s.enabled) then
      raise exception 'plan step % names unknown skill %', v_i, quote_literal(v_skill)
        using errcode = 'RPSKL',
              detail = 'registered skills: ' || coalesce((select string_agg(name, ', ' order by name) from runproof.skills where enabled), '(none)'),
              hint = 'use a registered skill; a worker registers its skills in runproof.skills when it starts';
    end if;
    if v_step ? 'input' and jsonb_typeof(v_step -> 'input') <> 'object' then
      raise exception 'plan step % input must be an object', v_i
        using errcode = 'RPPLN', hint = 'pass the skill''s arguments as a JSON object';
    end if;
    -- Deeper input passes the jsonb parser but not the worker, which must serialise it again to
    -- record the step (found by the bad-input catalogue: the attempt failed and was retried forever).
    if v_step ? 'input' and jsonb_path_exists(v_step -> 'input', 'strict $.**{65}') then
      raise exception 'plan step % input is nested more than 64 levels deep', v_i
        using errcode = 'RPPLN', hint = 'flatten the input: at most 64 levels of objects and arrays';
    end if;
    if v_step ? 'timeout_ms' and (jsonb_typeof(v_step -> 'timeout_ms') <> 'number'
        or (v_step ->> 'timeout_ms')::numeric not between 1 and 3600000) then
      raise exception 'plan step % timeout_ms must be a number of milliseconds from 1 to 3600000', v_i
        using errcode = 'RPPLN', hint = 'omit timeout_ms to use the skill''s default';
    end if;
    -- The input the worker would pass the skill ({} when the step has none), against the schema
    -- the worker registered for it: a wait of "abc" ms is refused now, not when the run reaches it.
    select s.input_schema into v_schema from runproof.skills s where s.name = v_skill;
    v_problem := runproof_private.json_schema_problem(v_schema, coalesce(v_step -> 'input', '{}'::jsonb), 'input');
    if v_problem is not null then
      raise exception 'plan step % (%) %', v_i, v_skill, v_problem
        using errcode = 'RPPLN',
              hint = 'give the step the input its skill expects (select input_schema from runproof.skills where name = ' || quote_literal(v_skill) || ')';
    end if;
    v_i := v_i + 1;
  end loop;
  v_key := runproof_private.inexact_number(p_plan, 'plan');
  if v_key is not null then
    raise exception 'plan number % cannot be held exactly by a 64-bit float, so the skill would receive another number than the one recorded', v_key
      using errcode = 'RPPLN', hint = 'pass such numbers as strings, or round them to a value a double holds';
  end if;
end
$$;
comment on function runproof_private.validate_plan(jsonb) is
  'Raises RPPLN (malformed plan, including step input nested more than 64 levels deep or not fitting its skill''s input_schema, or a number no 64-bit float holds exactly) or RPSKL (unknown skill) unless the plan is valid and names only registered, enabled skills.';

create or replace function runproof_private.tg_runs__plan_check() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_key text;
begin
  if tg_op = 'UPDATE' then
    v_key := format('tenant_id=%s, id=%s', old.tenant_id, old.id);
    if old.plan is not null then
      if new.plan is distinct from old.plan then
        perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'changes the stored plan',
          'a stored plan never changes; enqueue a new run with the new plan');
      end if;
      return new;
    end if;
    if new.plan is not null and old.status <> 'pending' then
      perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'stores a plan after planning',
        'a plan can only be stored while the run is pending');
    end if;
  end if;
  if new.plan is not null then
    perform runproof_private.validate_plan(new.plan);
    new.planned_at := coalesce(new.planned_at, now());
  end if;
  return new;
end
$$;
comment on function runproof_private.tg_runs__plan_check() is
  'Trigger: validates a plan when it is stored (shape, size, registered skills) and stamps planned_at; a stored plan never changes, and none is stored after planning. Fires for INSERT and for every UPDATE that sets the plan.';

create or replace trigger tg_runs__plan_check before insert or update of plan on runproof.runs
  for each row execute function runproof_private.tg_runs__plan_check();
alter table runproof.runs enable always trigger tg_runs__plan_check;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('runs', 'tg_runs__plan_check', 'storing a malformed plan (RPPLN) or one naming an unregistered skill (RPSKL); changing a stored plan, or storing one after planning (RPIMM)', 'storing a valid plan once, while the run is pending')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
--! EndIncluded ledger/plan.sql
--! Included ledger/runs.sql
-- The run state machine and the guards of runproof.runs: a run is never deleted, what it is
-- (tenant, agent, goal, origin, plan) never changes, its status moves only along
-- run_status_transitions, its progress only with its recorded steps, and entering a final status
-- seals it (its seal text and run root, docs/proof-format.md section 8) and freezes it.

-- The state machine: the only status changes a run may make.
delete from runproof_private.run_status_transitions;
insert into runproof_private.run_status_transitions (from_status, to_status, description) values
  ('pending', 'planned', 'the planner stored a valid plan'),
  ('pending', 'failed', 'planning failed'),
  ('pending', 'cancelled', 'cancelled before planning'),
  ('planned', 'running', 'an execution attempt started'),
  ('planned', 'cancelled', 'cancelled before execution'),
  ('running', 'succeeded', 'every plan step succeeded'),
  ('running', 'failed', 'a step failed permanently or attempts ran out'),
  ('running', 'halted', 'the policy denied a step'),
  ('running', 'cancelled', 'cancel_run stopped the run between steps'),
  ('running', 'retrying', 'a transient failure or a crashed worker; a new attempt will resume'),
  ('retrying', 'running', 'the next attempt started'),
  ('retrying', 'failed', 'no attempts left'),
  ('retrying', 'cancelled', 'cancelled between attempts');

create or replace function runproof_private.tg_runs__start_state() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  if new.status not in ('pending', 'planned') or new.attempts <> 0 or new.next_plan_step <> 0 or new.cost_cents <> 0
     or new.trace_count is not null or new.root_hash is not null or new.seal is not null or new.started_at is not null or new.finished_at is not null then
    raise exception 'a new run starts pending (or planned, with a plan), with no attempts, progress or seal'
      using errcode = 'RPSTS', hint = 'create runs with runproof.enqueue_run';
  end if;
  if (new.plan is null) <> (new.status = 'pending') then
    raise exception 'a new run is pending without a plan, or planned with one'
      using errcode = 'RPSTS', hint = 'create runs with runproof.enqueue_run';
  end if;
  -- Foreign keys do not fire in replica mode; this trigger always does.
  if not exists (select 1 from runproof.agents a where a.tenant_id = new.tenant_id and a.id = new.agent_id) then
    raise exception 'agent % not found for tenant %', new.agent_id, new.tenant_id
      using errcode = 'RPNFD', hint = 'create runs with runproof.enqueue_run, for one of the tenant''s agents';
  end if;
  return new;
end
$$;
comment on function runproof_private.tg_runs__start_state() is
  'Trigger: a new run starts pending (or planned with its plan), with no attempts, progress or seal, for an agent of its tenant (checked even in replica mode). Named to fire after the origin and plan checks.';

create or replace function runproof_private.tg_runs__guard() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_changed text[];
  v_key text;
  v_traces integer;
  v_open integer;
  v_last record;
  v_steps record;
begin
  v_key := format('tenant_id=%s, id=%s', old.tenant_id, old.id);
  if tg_op = 'DELETE' then
    perform runproof_private.raise_immutable('DELETE', 'runs', v_key, 'runs are never deleted',
      'a run is part of the ledger; archive its traces instead');
  end if;

  -- Compared column by column: the whole-row jsonb diff (changed_columns) serialises the plan twice,
  -- on every update, and record_step updates the run once per step. The diff is computed only for
  -- the messages below and for a finished run, where it decides whether the update changes anything.
  if (new.tenant_id, new.id, new.agent_id, new.goal, new.origin_system_id, new.idempotency_key, new.created_at, new.max_attempts)
     is distinct from (old.tenant_id, old.id, old.agent_id, old.goal, old.origin_system_id, old.idempotency_key, old.created_at, old.max_attempts) then
    v_changed := array_remove(runproof_private.changed_columns(to_jsonb(old), to_jsonb(new)), 'updated_at');
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key,
      'changes ' || array_to_string(v_changed, ', '),
      'tenant, agent, goal, origin_system_id, idempotency_key and max_attempts never change; enqueue a new run instead');
  end if;
  -- The plan is guarded by tg_runs__plan_check, which fires whenever an UPDATE sets it (UPDATE OF
  -- plan); an UPDATE that does not set the plan cannot change it, so it is not compared here.
  if runproof_private.is_terminal_status(old.status) then
    v_changed := array_remove(runproof_private.changed_columns(to_jsonb(old), to_jsonb(new)), 'updated_at');
  end if;
  if runproof_private.is_terminal_status(old.status) and cardinality(v_changed) = 0 then
    new.updated_at := old.updated_at;
    return new;
  end if;
  if runproof_private.is_terminal_status(old.status) then
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key,
      format('the run is %s; changes %s', old.status, array_to_string(v_changed, ', ')),
      'a finished run never changes');
  end if;

  if new.status is distinct from old.status then
    if not exists (select 1 from runproof_private.run_status_transitions
                   where from_status = old.status and to_status = new.status) then
      raise exception 'run % cannot go from % to %', old.id, old.status, new.status
        using errcode = 'RPSTS',
              detail = 'allowed from ' || old.status || ': ' || coalesce((select string_agg(to_status, ', ' order by to_status)
                         from runproof_private.run_status_transitions where from_status = old.status), '(none)'),
              hint = 'see runproof_private.run_status_transitions for the state machine';
    end if;
  end if;

  if new.status = 'running' and old.status <> 'running' and new.attempts <> old.attempts + 1 then
    raise exception 'run % can only start running with a new attempt', old.id
      using errcode = 'RPSTS', hint = 'start attempts with runproof_private.start_attempt, which opens the attempt''s trace';
  end if;
  -- A final status must be what the steps say happened (docs/proof-format.md section 9.3, check 11).
  if runproof_private.is_terminal_status(new.status) and not runproof_private.is_terminal_status(old.status) then
    select t.status as trace_status,
           (select s.status from runproof.trace_steps s where s.tenant_id = t.tenant_id and s.trace_id = t.id
             order by s.step_index desc limit 1) as step_status
      into v_last
      from runproof.traces t where t.tenant_id = new.tenant_id and t.run_id = new.id
     order by t.attempt desc limit 1;
    if new.status = 'succeeded' and new.next_plan_step <> jsonb_array_length(new.plan -> 'steps') then
      raise exception 'run % cannot succeed: % of % plan steps succeeded', old.id, new.next_plan_step, jsonb_array_length(new.plan -> 'steps')
        using errcode = 'RPSTS', hint = 'a run succeeds when every plan step has a succeeded step';
    elsif new.status = 'succeeded' and v_last.trace_status is distinct from 'completed' then
      raise exception 'run % cannot succeed: its last attempt did not complete', old.id
        using errcode = 'RPSTS', hint = 'seal the last trace as completed first';
    elsif new.status = 'halted' and (v_last.trace_status is distinct from 'failed' or v_last.step_status is distinct from 'denied') then
      raise exception 'run % cannot halt: its last attempt did not end with a denied step', old.id
        using errcode = 'RPSTS', hint = 'a run halts when the policy denies a step (runproof_private.record_denial)';
    elsif new.status = 'failed' and v_last.trace_status is not null
          and not (v_last.trace_status = 'failed' and v_last.step_status = 'failed')
          and not (v_last.trace_status = 'aborted' and v_last.step_status is null) then
      raise exception 'run % cannot fail: its last attempt did not end with a failed step', old.id
        using errcode = 'RPSTS', hint = 'a run fails at a failed step, in planning (no attempt), or after attempts abandoned before any step';
    elsif new.status = 'cancelled' and v_last.trace_status in ('completed', 'running') then
      raise exception 'run % cannot be cancelled: its last attempt is %', old.id, v_last.trace_status
        using errcode = 'RPSTS', hint = 'seal the running attempt as aborted first (runproof_private.end_attempt)';
    end if;
  end if;
  if new.attempts <> old.attempts and not (new.attempts = old.attempts + 1 and new.status = 'running' and old.status <> 'running') then
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'changes attempts',
      'attempts only grows by one, when a new attempt starts (runproof_private.start_attempt)');
  end if;
  if (new.next_plan_step, new.cost_cents) is distinct from (old.next_plan_step, old.cost_cents) then
    if old.status <> 'running' then
      perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'changes progress outside a running attempt',
        'progress is recorded with its step by runproof_private.record_step');
    end if;
    -- Progress moves only with the steps that made it: the running attempt's last steps must be
    -- plan steps old.next_plan_step .. new.next_plan_step - 1, succeeded, in order (the worker
    -- records one at a time; a bulk load, several), and cost moves by their cost; without progress,
    -- the last step is the failed or denied one at old.next_plan_step, and cost moves by its cost.
    select count(*) as n,
           count(*) filter (where l.status = 'succeeded'
                              and l.plan_step = old.next_plan_step + greatest(new.next_plan_step - old.next_plan_step, 1) - l.rn) as ok,
           coalesce(sum(l.cost_cents), 0) as cost,
           min(l.plan_step) filter (where l.rn = 1) as last_plan_step,
           min(l.status) filter (where l.rn = 1) as last_status
      into v_last
      from (select s.plan_step, s.status, s.cost_cents, row_number() over (order by s.step_index desc) as rn
              from runproof.traces t join runproof.trace_steps s on s.tenant_id = t.tenant_id and s.trace_id = t.id
             where t.tenant_id = old.tenant_id and t.run_id = old.id and t.attempt = old.attempts
             order by s.step_index desc
             limit greatest(new.next_plan_step - old.next_plan_step, 1)) l;
    if new.next_plan_step < old.next_plan_step
       or new.next_plan_step > old.next_plan_step
          and (v_last.n <> new.next_plan_step - old.next_plan_step or v_last.ok <> v_last.n
               or new.cost_cents <> old.cost_cents + v_last.cost)
       or new.next_plan_step = old.next_plan_step
          and (v_last.n = 0 or v_last.last_status = 'succeeded' or v_last.last_plan_step <> old.next_plan_step
               or new.cost_cents <> old.cost_cents + v_last.cost) then
      raise exception 'run % progress (plan step % to %, cost % to %) does not come with its recorded steps',
        old.id, old.next_plan_step, new.next_plan_step, old.cost_cents, new.cost_cents
        using errcode = 'RPSTS',
              detail = case when v_last.n = 0 then format('attempt %s has no step', old.attempts)
                            else format('the last step of attempt %s is plan step %s, %s', old.attempts, v_last.last_plan_step, v_last.last_status) end,
              hint = 'progress is recorded with its step by runproof_private.record_step';
    end if;
  end if;
  if old.started_at is not null and new.started_at is distinct from old.started_at
     or old.planned_at is not null and new.planned_at is distinct from old.planned_at then
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'changes started_at or planned_at',
      'timestamps of what happened are set once');
  end if;

  if new.status = 'running' then
    new.started_at := coalesce(new.started_at, now());
  end if;

  -- Entering a final status seals the run (docs/proof-format.md section 8): trace_count, the seal
  -- text and the run root, computed here, never by a client. Its progress and cost must be its steps'.
  if runproof_private.is_terminal_status(new.status) then
    if new.trace_count is not null or new.root_hash is not null or new.seal is not null then
      perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'supplies trace_count, seal or root_hash',
        'the run seal is computed by the database when the run ends');
    end if;
    select count(*), count(*) filter (where t.status = 'running') into v_traces, v_open
      from runproof.traces t where t.tenant_id = new.tenant_id and t.run_id = new.id;
    if v_open > 0 then
      raise exception 'run % still has a running trace', new.id
        using errcode = 'RPSTS', hint = 'seal the trace first (runproof_private.seal_trace)';
    end if;
    select count(*) filter (where s.status = 'succeeded') as succeeded, coalesce(sum(s.cost_cents), 0) as cost into v_steps
      from runproof.traces t join runproof.trace_steps s on s.tenant_id = t.tenant_id and s.trace_id = t.id
     where t.tenant_id = new.tenant_id and t.run_id = new.id;
    if v_steps.succeeded <> new.next_plan_step or v_steps.cost <> new.cost_cents then
      raise exception 'run % cannot be sealed: its progress (% plan steps, % cents) is not its steps'' (% succeeded, % cents)',
        new.id, new.next_plan_step, new.cost_cents, v_steps.succeeded, v_steps.cost
        using errcode = 'RPSTS', hint = 'progress is recorded with its step by runproof_private.record_step';
    end if;
    new.trace_count := v_traces;
    new.finished_at := coalesce(new.finished_at, now());
    new.updated_at := now();
    new.seal := runproof_private.run_seal_canonical(new);
    new.root_hash := sha256(new.seal);
    return new;
  elsif new.trace_count is not null or new.root_hash is not null or new.seal is not null or new.finished_at is not null then
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'sets the seal of an unfinished run',
      'the run seal is computed by the database when the run ends');
  end if;

  new.updated_at := now();
  return new;
end
$$;
comment on function runproof_private.tg_runs__guard() is
  'Trigger: runs are never deleted; identity, goal and origin never change (the plan: tg_runs__plan_check); status follows the state machine; progress moves only with its recorded step; a final status seals the run (trace_count, seal, root_hash over its content, outcome, traces and incidents) and freezes it.';

-- Trigger order is by name: the origin and plan checks (the commonest mistakes) report before
-- tg_runs__start_state.
create or replace trigger tg_runs__start_state before insert on runproof.runs
  for each row execute function runproof_private.tg_runs__start_state();
create or replace trigger tg_runs__guard before update or delete on runproof.runs
  for each row execute function runproof_private.tg_runs__guard();
create or replace trigger tg_runs__no_truncate before truncate on runproof.runs
  for each statement execute function runproof_private.tg__no_truncate();
alter table runproof.runs enable always trigger tg_runs__start_state;
alter table runproof.runs enable always trigger tg_runs__guard;
alter table runproof.runs enable always trigger tg_runs__no_truncate;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('runs', 'tg_runs__start_state', 'INSERT of a run that is not pending/planned, or already has attempts, progress or a seal (RPSTS), or whose agent is not its tenant''s (RPNFD, even in replica mode)', 'INSERT of a fresh run (runproof.enqueue_run)'),
  ('runs', 'tg_runs__guard', 'DELETE; changing tenant, agent, goal, origin, idempotency key or max_attempts; any change to a finished run; progress outside an attempt; a client-supplied seal (RPIMM); a status change outside the state machine, progress or cost that does not come with its recorded step, a seal whose progress or cost is not its steps'' (RPSTS); a move to running without a new attempt, or to a final status the steps contradict: succeeded before every plan step succeeded and the last attempt completed, halted without a denied step, failed without a failed one, cancelled after a completed attempt (RPSTS)', 'status changes along runproof_private.run_status_transitions; plan stored once while pending; progress with its step while running; the seal computed at the final status'),
  ('runs', 'tg_runs__no_truncate', 'TRUNCATE (RPIMM)', 'nothing')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
--! EndIncluded ledger/runs.sql
--! Included ledger/traces.sql
-- The guards of runproof.traces: a trace opens only as its run's current attempt; afterwards its
-- only changes are the seal (running -> completed | failed | aborted, checked against its chain
-- and its steps, with the seal text and hash computed here) and archival (archived_at set once).

create or replace function runproof_private.tg_traces__open() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_run record;
begin
  -- Lock the run so two attempts cannot open at once.
  select r.status, r.attempts into v_run from runproof.runs r
   where r.tenant_id = new.tenant_id and r.id = new.run_id for no key update;
  if not found then
    raise exception 'run % of tenant % not found', new.run_id, new.tenant_id
      using errcode = 'RPNFD', hint = 'open traces with runproof_private.start_attempt';
  end if;
  if v_run.status <> 'running' or new.attempt <> v_run.attempts then
    raise exception 'trace attempt % does not match run % (status %, attempts %)', new.attempt, new.run_id, v_run.status, v_run.attempts
      using errcode = 'RPSTS', hint = 'open traces with runproof_private.start_attempt';
  end if;
  if new.status <> 'running' or new.completed_at is not null or new.step_count is not null
     or new.root_hash is not null or new.archived_at is not null then
    raise exception 'a new trace starts running and unsealed'
      using errcode = 'RPSTS', hint = 'open traces with runproof_private.start_attempt';
  end if;
  if exists (select 1 from runproof.traces t where t.tenant_id = new.tenant_id and t.run_id = new.run_id and t.status = 'running') then
    raise exception 'run % already has a running trace', new.run_id
      using errcode = 'RPSTS', hint = 'seal the running trace before starting another attempt';
  end if;
  return new;
end
$$;
comment on function runproof_private.tg_traces__open() is
  'Trigger: a trace opens only as the run''s current attempt, running and unsealed, and only when no other trace of the run is running.';

create or replace function runproof_private.tg_traces__guard() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_key text;
  v_changed text[];
  v_last_index integer;
  v_last_hash bytea;
  v_last_status text;
begin
  v_key := format('tenant_id=%s, id=%s', old.tenant_id, old.id);
  if tg_op = 'DELETE' then
    perform runproof_private.raise_immutable('DELETE', 'traces', v_key, 'traces are never deleted',
      'archive the trace instead (runproof.archive_trace)');
  end if;
  v_changed := runproof_private.changed_columns(to_jsonb(old), to_jsonb(new));

  -- Archival: archived_at from NULL to a timestamp, nothing else.
  if v_changed = array['archived_at'] and old.archived_at is null and new.archived_at is not null and old.status <> 'running' then
    return new;
  end if;

  -- Completion and seal: running -> completed | failed | aborted, with the seal set once.
  if old.status = 'running' and new.status in ('completed', 'failed', 'aborted')
     and v_changed <@ array['status', 'completed_at', 'step_count', 'root_hash', 'metadata']
     and new.completed_at is not null and new.step_count is not null and new.root_hash is not null then
    select s.step_index, s.step_hash, s.status into v_last_index, v_last_hash, v_last_status
      from runproof.trace_steps s
     where s.tenant_id = old.tenant_id and s.trace_id = old.id
     order by s.step_index desc limit 1;
    if new.step_count <> coalesce(v_last_index + 1, 0)
       or new.root_hash <> coalesce(v_last_hash, runproof_private.genesis_hash(old.tenant_id, old.run_id, old.id)) then
      raise exception 'seal of trace % does not match its chain: step_count % (chain has %), root_hash % (chain root %)',
        old.id, new.step_count, coalesce(v_last_index + 1, 0), runproof_private.hex(new.root_hash),
        runproof_private.hex(coalesce(v_last_hash, runproof_private.genesis_hash(old.tenant_id, old.run_id, old.id)))
        using errcode = 'RPSEL', hint = 'seal traces with runproof_private.seal_trace, which reads the seal off the chain';
    end if;
    -- The status must be what the steps say happened (docs/proof-format.md section 9.2, check 7).
    if new.status = 'completed' and v_last_status is distinct from 'succeeded' and v_last_status is not null
       or new.status = 'failed' and v_last_status is distinct from 'failed' and v_last_status is distinct from 'denied'
       or new.status = 'aborted' and v_last_status = 'denied' then
      raise exception 'trace % cannot be sealed %: its last step %', old.id, new.status,
        coalesce(v_last_status, 'does not exist')
        using errcode = 'RPSEL', hint = 'a completed trace ends with a succeeded step, a failed one with a failed or denied step, an aborted one not with a denied step';
    end if;
    -- The seal text and its hash are the database's (docs/proof-format.md section 6).
    new.seal := runproof_private.trace_canonical(new);
    new.seal_hash := sha256(new.seal);
    return new;
  end if;

  perform runproof_private.raise_immutable('UPDATE', 'traces', v_key,
    format('status %s -> %s, changes %s', old.status, new.status, array_to_string(v_changed, ', ')),
    'a trace only changes at its seal (running -> completed|failed|aborted, setting completed_at, step_count, root_hash and optionally metadata) and at archival (archived_at NULL -> timestamp)');
  return null;
end
$$;
comment on function runproof_private.tg_traces__guard() is
  'Trigger: traces are never deleted; the only changes are the seal (running -> completed|failed|aborted with completed_at, step_count and root_hash checked against the chain, metadata optional) and archival (archived_at set once).';

create or replace trigger tg_traces__open before insert on runproof.traces
  for each row execute function runproof_private.tg_traces__open();
create or replace trigger tg_traces__guard before update or delete on runproof.traces
  for each row execute function runproof_private.tg_traces__guard();
create or replace trigger tg_traces__no_truncate before truncate on runproof.traces
  for each statement execute function runproof_private.tg__no_truncate();
alter table runproof.traces enable always trigger tg_traces__open;
alter table runproof.traces enable always trigger tg_traces__guard;
alter table runproof.traces enable always trigger tg_traces__no_truncate;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('traces', 'tg_traces__open', 'INSERT of a trace that is not the run''s current attempt, not running, pre-sealed, or beside another running trace (RPSTS)', 'INSERT by runproof_private.start_attempt'),
  ('traces', 'tg_traces__guard', 'DELETE; any UPDATE other than the seal or archival, a client-supplied seal text or hash (RPIMM); a seal that disagrees with the chain or whose status disagrees with the last step (RPSEL)', 'seal: running -> completed|failed|aborted with completed_at, step_count, root_hash (and metadata); archival: archived_at NULL -> timestamp on a sealed trace'),
  ('traces', 'tg_traces__no_truncate', 'TRUNCATE (RPIMM)', 'nothing')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
--! EndIncluded ledger/traces.sql
--! Included ledger/trace_steps.sql
-- The hash chain of runproof.trace_steps: the database computes decision_hash, prev_hash and
-- step_hash on insert (docs/proof-format.md section 3), appends to one trace are serialized, gaps,
-- duplicates and appends to a sealed trace are refused, and a step is never changed or removed.

create or replace function runproof_private.tg_trace_steps__chain() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_trace record;
  v_last_index integer;
  v_last_hash bytea;
  v_last_status text;
  v_expected integer;
  v_decision runproof.policy_decisions;
begin
  if new.prev_hash is not null or new.step_hash is not null or new.decision_hash is not null then
    raise exception 'decision_hash, prev_hash and step_hash are computed by the database'
      using errcode = 'RPCHN', hint = 'omit decision_hash, prev_hash and step_hash from the INSERT';
  end if;
  -- Serialize appends to one trace: the row lock is held until the transaction ends.
  select t.run_id, t.status, t.archived_at into v_trace
    from runproof.traces t where t.tenant_id = new.tenant_id and t.id = new.trace_id
    for no key update;
  if not found then
    raise exception 'trace % of tenant % not found', new.trace_id, new.tenant_id
      using errcode = 'RPNFD', hint = 'open a trace with runproof_private.start_attempt first';
  end if;
  if v_trace.status <> 'running' then
    raise exception 'trace % is sealed (%); steps cannot be appended', new.trace_id, v_trace.status
      using errcode = 'RPCHN', hint = 'a sealed trace is final; a new attempt gets a new trace';
  end if;
  if v_trace.run_id <> new.run_id then
    raise exception 'trace % belongs to run %, not %', new.trace_id, v_trace.run_id, new.run_id
      using errcode = 'RPCHN', hint = 'record the step on a trace of its own run';
  end if;
  select s.step_index, s.step_hash, s.status into v_last_index, v_last_hash, v_last_status
    from runproof.trace_steps s
   where s.tenant_id = new.tenant_id and s.trace_id = new.trace_id
   order by s.step_index desc limit 1;
  v_expected := coalesce(v_last_index + 1, 0);
  if v_last_status is not null and v_last_status <> 'succeeded' then
    raise exception 'trace % ended at step % (%): no step comes after a failed or denied one', new.trace_id, v_last_index, v_last_status
      using errcode = 'RPCHN', hint = 'end the attempt (runproof_private.end_attempt); a new attempt gets a new trace';
  end if;
  if new.step_index <> v_expected then
    raise exception '% step index %: trace % expects step %',
      case when new.step_index < v_expected then 'duplicate' else 'gap at' end, new.step_index, new.trace_id, v_expected
      using errcode = 'RPCHN', hint = 'append steps in order, 0, 1, 2, ... (runproof_private.record_step does this)';
  end if;
  -- Foreign keys do not fire under session_replication_role = replica; this trigger always does.
  select d.* into v_decision from runproof.policy_decisions d
   where d.tenant_id = new.tenant_id and d.trace_id = new.trace_id and d.step_index = new.step_index;
  if not found then
    raise exception 'step % of trace % has no policy decision', new.step_index, new.trace_id
      using errcode = 'RPCHN', hint = 'record the decision first (runproof_private.decide_step): enforcement cannot be skipped';
  end if;
  if v_decision.decision is distinct from new.policy_decision or v_decision.plan_step <> new.plan_step
     or v_decision.skill <> new.skill or v_decision.run_id <> new.run_id then
    raise exception 'step % of trace % does not match its policy decision (decision %, plan step %, skill %)',
      new.step_index, new.trace_id, v_decision.decision, v_decision.plan_step, v_decision.skill
      using errcode = 'RPCHN', hint = 'record the step that was decided, with the decision that was taken';
  end if;
  -- The decision row is covered by the step's hash (docs/proof-format.md section 4).
  new.decision_hash := sha256(runproof_private.decision_canonical(v_decision));
  new.recorded_at := clock_timestamp();
  new.prev_hash := coalesce(v_last_hash, runproof_private.genesis_hash(new.tenant_id, new.run_id, new.trace_id));
  new.step_hash := runproof_private.step_hash(new.prev_hash, runproof_private.step_canonical(new));
  return new;
end
$$;
comment on function runproof_private.tg_trace_steps__chain() is
  'Trigger: appends a step to its trace''s chain. Serializes appends per trace, rejects gaps, duplicates, appends to sealed traces, a step that does not match its policy decision and client-supplied hashes, and computes decision_hash, prev_hash and step_hash.';

create or replace trigger tg_trace_steps__chain before insert on runproof.trace_steps
  for each row execute function runproof_private.tg_trace_steps__chain();
create or replace trigger tg_trace_steps__append_only before update or delete on runproof.trace_steps
  for each row execute function runproof_private.tg__append_only('tenant_id', 'trace_id', 'step_index');
create or replace trigger tg_trace_steps__no_truncate before truncate on runproof.trace_steps
  for each statement execute function runproof_private.tg__no_truncate();
alter table runproof.trace_steps enable always trigger tg_trace_steps__chain;
alter table runproof.trace_steps enable always trigger tg_trace_steps__append_only;
alter table runproof.trace_steps enable always trigger tg_trace_steps__no_truncate;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('trace_steps', 'tg_trace_steps__chain', 'INSERT with client-supplied hashes, a gap or duplicate index, into a sealed or missing trace, after a failed or denied step, for another run, or without the policy decision it matches (RPCHN) - checked even in replica mode, where foreign keys are skipped', 'INSERT of the next step; computes decision_hash, prev_hash and step_hash'),
  ('trace_steps', 'tg_trace_steps__append_only', 'UPDATE, DELETE (RPIMM)', 'nothing'),
  ('trace_steps', 'tg_trace_steps__no_truncate', 'TRUNCATE (RPIMM)', 'nothing')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
--! EndIncluded ledger/trace_steps.sql
--! Included ledger/incidents.sql
-- Incidents are append-only, belong to an existing run of their tenant, and are written in the
-- same transaction as what caused them (the execution functions).

create or replace function runproof_private.tg_incidents__check() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_status text;
begin
  -- Foreign keys do not fire in replica mode; this trigger always does.
  select r.status into v_status from runproof.runs r where r.tenant_id = new.tenant_id and r.id = new.run_id;
  if not found then
    raise exception 'run % of tenant % not found', new.run_id, new.tenant_id
      using errcode = 'RPNFD', hint = 'incidents are recorded by the worker for its own runs';
  end if;
  -- A finished run is sealed, its incidents included.
  if runproof_private.is_terminal_status(v_status) then
    raise exception 'run % is % and sealed: no incident can be added to it', new.run_id, v_status
      using errcode = 'RPSTS', hint = 'record an incident before the status change it explains';
  end if;
  return new;
end
$$;
comment on function runproof_private.tg_incidents__check() is 'Trigger: an incident belongs to an existing, unfinished run of its tenant (checked even in replica mode): a finished run is sealed with its incidents.';

create or replace trigger tg_incidents__check before insert on runproof.incidents
  for each row execute function runproof_private.tg_incidents__check();
create or replace trigger tg_incidents__append_only before update or delete on runproof.incidents
  for each row execute function runproof_private.tg__append_only('tenant_id', 'id');
create or replace trigger tg_incidents__no_truncate before truncate on runproof.incidents
  for each statement execute function runproof_private.tg__no_truncate();
alter table runproof.incidents enable always trigger tg_incidents__check;
alter table runproof.incidents enable always trigger tg_incidents__append_only;
alter table runproof.incidents enable always trigger tg_incidents__no_truncate;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('incidents', 'tg_incidents__check', 'INSERT for a run that does not exist (RPNFD), even in replica mode, or for a finished run (RPSTS)', 'INSERT for an existing, unfinished run'),
  ('incidents', 'tg_incidents__append_only', 'UPDATE, DELETE (RPIMM)', 'nothing'),
  ('incidents', 'tg_incidents__no_truncate', 'TRUNCATE (RPIMM)', 'nothing')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
--! EndIncluded ledger/incidents.sql
--! Included ledger/payloads.sql
-- Step payloads (input, output, error) live apart from the chain, committed to by salted hashes
-- inside each step (docs/proof-format.md section 5). A payload is never changed; it is removed only
-- with its erasure recorded (runproof.erase_payloads), and erasure records are append-only.

create or replace function runproof_private.tg_step_payloads__check() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_step record;
begin
  -- Foreign keys do not fire in replica mode; this trigger always does.
  select s.run_id, s.input_commitment, s.output_commitment, s.error_commitment into v_step
    from runproof.trace_steps s
   where s.tenant_id = new.tenant_id and s.trace_id = new.trace_id and s.step_index = new.step_index;
  if not found or v_step.run_id <> new.run_id then
    raise exception 'step % of trace % not found for run %', new.step_index, new.trace_id, new.run_id
      using errcode = 'RPNFD', hint = 'payloads are recorded with their step by runproof_private.record_step';
  end if;
  if runproof_private.payload_commitment('input', new.input_salt, new.input::text) is distinct from v_step.input_commitment
     or runproof_private.payload_commitment('output', new.output_salt, new.output::text) is distinct from v_step.output_commitment
     or runproof_private.payload_commitment('error', new.error_salt, new.error) is distinct from v_step.error_commitment then
    raise exception 'the payloads of step % of trace % do not match the step''s commitments', new.step_index, new.trace_id
      using errcode = 'RPCHN', hint = 'payloads are recorded with their step by runproof_private.record_step';
  end if;
  return new;
end
$$;
comment on function runproof_private.tg_step_payloads__check() is
  'Trigger: a step''s payloads belong to an existing step of their run and match the salted commitments the step''s hash covers (checked even in replica mode).';

create or replace function runproof_private.tg_step_payloads__guard() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_key text := format('tenant_id=%s, trace_id=%s, step_index=%s', old.tenant_id, old.trace_id, old.step_index);
begin
  if tg_op = 'DELETE' and exists (select 1 from runproof.payload_erasure_steps e
                                   where e.tenant_id = old.tenant_id and e.trace_id = old.trace_id and e.step_index = old.step_index) then
    return old;
  end if;
  perform runproof_private.raise_immutable(tg_op, 'step_payloads', v_key,
    case tg_op when 'DELETE' then 'a payload is removed only together with the record of its erasure'
               else 'a payload never changes' end,
    'erase payloads with runproof.erase_payloads, which records who erased what, when and why');
  return null;
end
$$;
comment on function runproof_private.tg_step_payloads__guard() is
  'Trigger: a payload row is never updated, and deleted only when its erasure is recorded in runproof.payload_erasure_steps (runproof.erase_payloads does both).';

create or replace function runproof_private.tg_payload_erasure_steps__check() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  if not exists (select 1 from runproof.payload_erasures e where e.tenant_id = new.tenant_id and e.id = new.erasure_id)
     or not exists (select 1 from runproof.trace_steps s where s.tenant_id = new.tenant_id and s.trace_id = new.trace_id
                     and s.step_index = new.step_index and s.run_id = new.run_id) then
    raise exception 'erasure % or step % of trace % not found for tenant %', new.erasure_id, new.step_index, new.trace_id, new.tenant_id
      using errcode = 'RPNFD', hint = 'erasures are recorded by runproof.erase_payloads';
  end if;
  return new;
end
$$;
comment on function runproof_private.tg_payload_erasure_steps__check() is
  'Trigger: an erased step belongs to its erasure''s tenant and exists (checked even in replica mode).';

create or replace trigger tg_step_payloads__check before insert on runproof.step_payloads
  for each row execute function runproof_private.tg_step_payloads__check();
create or replace trigger tg_step_payloads__guard before update or delete on runproof.step_payloads
  for each row execute function runproof_private.tg_step_payloads__guard();
create or replace trigger tg_step_payloads__no_truncate before truncate on runproof.step_payloads
  for each statement execute function runproof_private.tg__no_truncate();
create or replace trigger tg_payload_erasures__append_only before update or delete on runproof.payload_erasures
  for each row execute function runproof_private.tg__append_only('tenant_id', 'id');
create or replace trigger tg_payload_erasures__no_truncate before truncate on runproof.payload_erasures
  for each statement execute function runproof_private.tg__no_truncate();
create or replace trigger tg_payload_erasure_steps__check before insert on runproof.payload_erasure_steps
  for each row execute function runproof_private.tg_payload_erasure_steps__check();
create or replace trigger tg_payload_erasure_steps__append_only before update or delete on runproof.payload_erasure_steps
  for each row execute function runproof_private.tg__append_only('tenant_id', 'trace_id', 'step_index');
create or replace trigger tg_payload_erasure_steps__no_truncate before truncate on runproof.payload_erasure_steps
  for each statement execute function runproof_private.tg__no_truncate();
alter table runproof.step_payloads enable always trigger tg_step_payloads__check;
alter table runproof.step_payloads enable always trigger tg_step_payloads__guard;
alter table runproof.step_payloads enable always trigger tg_step_payloads__no_truncate;
alter table runproof.payload_erasures enable always trigger tg_payload_erasures__append_only;
alter table runproof.payload_erasures enable always trigger tg_payload_erasures__no_truncate;
alter table runproof.payload_erasure_steps enable always trigger tg_payload_erasure_steps__check;
alter table runproof.payload_erasure_steps enable always trigger tg_payload_erasure_steps__append_only;
alter table runproof.payload_erasure_steps enable always trigger tg_payload_erasure_steps__no_truncate;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('step_payloads', 'tg_step_payloads__check', 'INSERT for a missing step or another run (RPNFD), or of payloads that do not match the step''s commitments (RPCHN), even in replica mode', 'INSERT of a step''s payloads by runproof_private.record_step'),
  ('step_payloads', 'tg_step_payloads__guard', 'UPDATE; DELETE without a recorded erasure (RPIMM)', 'DELETE of payloads whose erasure is recorded (runproof.erase_payloads)'),
  ('step_payloads', 'tg_step_payloads__no_truncate', 'TRUNCATE (RPIMM)', 'nothing'),
  ('payload_erasures', 'tg_payload_erasures__append_only', 'UPDATE, DELETE (RPIMM)', 'nothing'),
  ('payload_erasures', 'tg_payload_erasures__no_truncate', 'TRUNCATE (RPIMM)', 'nothing'),
  ('payload_erasure_steps', 'tg_payload_erasure_steps__check', 'INSERT for a missing erasure or step, or another tenant''s (RPNFD), even in replica mode', 'INSERT by runproof.erase_payloads'),
  ('payload_erasure_steps', 'tg_payload_erasure_steps__append_only', 'UPDATE, DELETE (RPIMM)', 'nothing'),
  ('payload_erasure_steps', 'tg_payload_erasure_steps__no_truncate', 'TRUNCATE (RPIMM)', 'nothing')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
--! EndIncluded ledger/payloads.sql
--! Included proof/verify_trace.sql
-- Verifying one trace (docs/proof-format.md section 9.2): every step's index, link, hash, policy
-- decision, payload commitments and plan order recomputed from the stored rows in one pass (large
-- traces split over parallel workers), then the trace's status and seal compared with its steps.

-- The fault classes of one step, in the order they are checked (docs/proof-format.md section 9.2,
-- checks 3 to 6): the first step with a fault is reported, with the first of its checks that fails.
create or replace function runproof_private.step_fault_order() returns text[]
  language sql immutable parallel safe
  set search_path = pg_catalog
  as $$ select array['gap', 'link', 'hash', 'decision_missing', 'decision_hash', 'decision_other',
                     'payload_input', 'payload_output', 'payload_error', 'payload_missing', 'order', 'after_end'] $$;
comment on function runproof_private.step_fault_order() is
  'The checks of one step in the order a verifier applies them: chain (gap, link, hash), policy decision (missing, hash, describes another step), payloads (input, output, error commitments; missing without an erasure), plan order, a step after a failed or denied one.';

-- A SELECT ... INTO in PL/pgSQL runs with a row limit, and Postgres never starts parallel
-- workers for a statement run with a row limit ("Workers Planned: 2, Workers Launched: 0" in
-- auto_explain), so one pass over a large trace would use one core. RETURN QUERY runs without a
-- limit. For a large trace, step_faults_parallel therefore splits the pass in two:
--   * what needs chain order (gaps, links, plan order, a step after the end): one ordered pass
--     over the primary key, cheap (no hashing);
--   * what needs no order (every hash recomputed: the step's, its decision's, its payloads'): a
--     parallel aggregate (min(...) FILTER, not WHERE, so that the planner keeps it an aggregate).
-- The first fault is the same either way: every fault is placed at its step index (a gap at the
-- missing index), and since indexes are unique and sorted, the least (index, check) over both
-- passes is the first fault of the single pass.
create or replace function runproof_private.step_faults_parallel(
  p_tenant_id uuid, p_trace_id uuid, p_genesis bytea, p_resume integer)
  returns table (step_count integer, erased integer, succeeded integer, cost numeric,
                 first_bad integer, fault text)
  language plpgsql stable
  set search_path = pg_catalog
  -- Only called for large traces, where workers always pay off: do not let stale statistics
  -- (a trace that grew since the last ANALYZE) talk the planner out of them.
  set parallel_setup_cost = 0
  set parallel_tuple_cost = 0
  set min_parallel_table_scan_size = 0
  set min_parallel_index_scan_size = 0
  -- The per-step joins below are by (tenant, trace, step_index): with stale statistics the
  -- planner picks nested loops that rescan the trace per step (quadratic: 60,000 steps took
  -- 636 s instead of 0.6 s). Hash or merge joins are right at every trace size.
  set enable_nestloop = off
  as $$
begin
  return query execute $q$
    with ordered as (
      select count(*)::integer as n,
             count(*) filter (where o.status = 'succeeded')::integer as succeeded,
             coalesce(sum(o.cost_cents), 0) as cost,
             min(case when o.step_index <> o.pos then o.pos end) as gap,
             min(case when o.step_index = o.pos and o.prev_hash is distinct from o.expected_prev then o.pos end) as link,
             min(case when o.plan_step <> o.expected_plan then o.step_index end) as plan_order,
             min(case when o.status <> 'succeeded' and not o.is_last then o.step_index end) as after_end
        from (select st.step_index, (row_number() over w - 1)::integer as pos, st.prev_hash, st.status, st.plan_step, st.cost_cents,
                     coalesce(lag(st.step_hash) over w, $3) as expected_prev,
                     $4 + (count(*) filter (where st.status = 'succeeded') over w)::integer
                        - case when st.status = 'succeeded' then 1 else 0 end as expected_plan,
                     lead(st.step_index) over w is null as is_last
                from runproof.trace_steps st
               where st.tenant_id = $1 and st.trace_id = $2
              window w as (order by st.step_index)) o
    ), hashed as (
      select count(*) filter (where p.tenant_id is null and e.tenant_id is not null)::integer as erased,
             min(st.step_index) filter (
               where st.step_hash is distinct from runproof_private.step_hash(st.prev_hash, runproof_private.step_canonical(st))) as hash,
             min(st.step_index) filter (where d.tenant_id is null) as decision_missing,
             min(st.step_index) filter (
               where d.tenant_id is not null and sha256(runproof_private.decision_canonical(d)) is distinct from st.decision_hash) as decision_hash,
             min(st.step_index) filter (
               where d.tenant_id is not null and (d.run_id, d.plan_step, d.skill, d.decision) is distinct from (st.run_id, st.plan_step, st.skill, st.policy_decision)) as decision_other,
             min(st.step_index) filter (
               where p.tenant_id is not null and runproof_private.payload_commitment('input', p.input_salt, p.input::text) is distinct from st.input_commitment) as payload_input,
             min(st.step_index) filter (
               where p.tenant_id is not null and runproof_private.payload_commitment('output', p.output_salt, p.output::text) is distinct from st.output_commitment) as payload_output,
             min(st.step_index) filter (
               where p.tenant_id is not null and runproof_private.payload_commitment('error', p.error_salt, p.error) is distinct from st.error_commitment) as payload_error,
             min(st.step_index) filter (where p.tenant_id is null and e.tenant_id is null) as payload_missing
        from runproof.trace_steps st
        left join runproof.policy_decisions d on d.tenant_id = st.tenant_id and d.trace_id = st.trace_id and d.step_index = st.step_index
        left join runproof.step_payloads p on p.tenant_id = st.tenant_id and p.trace_id = st.trace_id and p.step_index = st.step_index
        -- An erasure is recorded when both its record (who, when, why) and its step row, for this run, exist.
        left join (runproof.payload_erasure_steps e join runproof.payload_erasures pe on pe.tenant_id = e.tenant_id and pe.id = e.erasure_id)
          on e.tenant_id = st.tenant_id and e.trace_id = st.trace_id and e.step_index = st.step_index and e.run_id = st.run_id
       where st.tenant_id = $1 and st.trace_id = $2
    )
    select o.n, h.erased, o.succeeded, o.cost, f.at, f.fault
      from ordered o cross join hashed h
      left join lateral (
        select x.at, x.fault
          from unnest(array[o.gap, o.link, h.hash, h.decision_missing, h.decision_hash, h.decision_other,
                            h.payload_input, h.payload_output, h.payload_error, h.payload_missing, o.plan_order, o.after_end],
                      runproof_private.step_fault_order()) with ordinality as x(at, fault, rank)
         where x.at is not null
         order by x.at, x.rank limit 1) f on true $q$
    using p_tenant_id, p_trace_id, p_genesis, p_resume;
end
$$;
comment on function runproof_private.step_faults_parallel(uuid, uuid, bytea, integer) is
  'step_faults for large traces: what needs chain order in one ordered pass, every hash recomputed by a parallel aggregate.';

create or replace function runproof_private.step_faults(
  p_tenant_id uuid, p_trace_id uuid, p_genesis bytea, p_resume integer, p_size_hint integer)
  returns table (step_count integer, erased integer, succeeded integer, cost numeric,
                 first_bad integer, fault text)
  language plpgsql stable
  set search_path = pg_catalog
  -- As in step_faults_parallel: never nested loops for the per-step joins (stale statistics
  -- made them quadratic; 8,000 steps took 9.5 s instead of 0.12 s).
  set enable_nestloop = off
  as $$
begin
  if p_size_hint >= 50000 then
    return query select * from runproof_private.step_faults_parallel(p_tenant_id, p_trace_id, p_genesis, p_resume);
    return;
  end if;
  -- One pass: every row checked for its index, its link to the previous stored step_hash (or the
  -- genesis), its own hash recomputed from its content, its policy decision, its payloads and its
  -- place in the plan. Together these are the whole chain, without trusting any stored hash alone.
  return query
    with s as (
      select st.step_index, (row_number() over w - 1)::integer as pos, st.status, st.cost_cents,
             case
               when st.step_index <> (row_number() over w - 1) then 'gap'
               when st.prev_hash is distinct from coalesce(lag(st.step_hash) over w, p_genesis) then 'link'
               when st.step_hash is distinct from runproof_private.step_hash(st.prev_hash, runproof_private.step_canonical(st)) then 'hash'
               when d.tenant_id is null then 'decision_missing'
               when sha256(runproof_private.decision_canonical(d)) is distinct from st.decision_hash then 'decision_hash'
               when (d.run_id, d.plan_step, d.skill, d.decision) is distinct from (st.run_id, st.plan_step, st.skill, st.policy_decision) then 'decision_other'
               when p.tenant_id is not null and runproof_private.payload_commitment('input', p.input_salt, p.input::text) is distinct from st.input_commitment then 'payload_input'
               when p.tenant_id is not null and runproof_private.payload_commitment('output', p.output_salt, p.output::text) is distinct from st.output_commitment then 'payload_output'
               when p.tenant_id is not null and runproof_private.payload_commitment('error', p.error_salt, p.error) is distinct from st.error_commitment then 'payload_error'
               when p.tenant_id is null and e.tenant_id is null then 'payload_missing'
               when st.plan_step <> p_resume + (count(*) filter (where st.status = 'succeeded') over w)::integer
                                   - case when st.status = 'succeeded' then 1 else 0 end then 'order'
               when st.status <> 'succeeded' and lead(st.step_index) over w is not null then 'after_end'
             end as fault,
             p.tenant_id is null and e.tenant_id is not null as erased
        from runproof.trace_steps st
        left join runproof.policy_decisions d on d.tenant_id = st.tenant_id and d.trace_id = st.trace_id and d.step_index = st.step_index
        left join runproof.step_payloads p on p.tenant_id = st.tenant_id and p.trace_id = st.trace_id and p.step_index = st.step_index
        -- An erasure is recorded when both its record (who, when, why) and its step row, for this run, exist.
        left join (runproof.payload_erasure_steps e join runproof.payload_erasures pe on pe.tenant_id = e.tenant_id and pe.id = e.erasure_id)
          on e.tenant_id = st.tenant_id and e.trace_id = st.trace_id and e.step_index = st.step_index and e.run_id = st.run_id
       where st.tenant_id = p_tenant_id and st.trace_id = p_trace_id
      window w as (order by st.step_index)
    )
    select count(*)::integer, (count(*) filter (where s.erased))::integer,
           (count(*) filter (where s.status = 'succeeded'))::integer, coalesce(sum(s.cost_cents), 0),
           (array_agg(s.pos order by s.pos) filter (where s.fault is not null))[1],
           (array_agg(s.fault order by s.pos) filter (where s.fault is not null))[1]
      from s;
end
$$;
comment on function runproof_private.step_faults(uuid, uuid, bytea, integer, integer) is
  'The step checks of a trace (docs/proof-format.md section 9.2, checks 3 to 6): how many steps it has, how many are erased or succeeded, their cost, and its first fault (the step index, the missing index for a gap, and the check that failed), or NULL. p_resume is the number of plan steps that succeeded in earlier attempts; p_size_hint (the last index + 1) picks the parallel plan for large traces.';

create or replace function runproof_private.seal_difference(p_now bytea, p_sealed bytea, p_names text[])
  returns table (element integer, name text, now_value text, sealed_value text)
  language plpgsql immutable parallel safe
  set search_path = pg_catalog
  as $$
declare
  v_now jsonb;
  v_sealed jsonb;
begin
  begin
    v_now := convert_from(p_now, 'UTF8')::jsonb;
    v_sealed := convert_from(p_sealed, 'UTF8')::jsonb;
  exception when others then
    element := -1; name := 'text';
    return next;
    return;
  end;
  if jsonb_typeof(v_sealed) <> 'array' or jsonb_array_length(v_sealed) <> cardinality(p_names) then
    element := -1; name := 'text';
    return next;
    return;
  end if;
  return query
    select (k - 1)::integer, p_names[k], (v_now -> (k - 1)::integer)::text, (v_sealed -> (k - 1)::integer)::text
      from generate_series(1, cardinality(p_names)) k
     where (v_now -> (k - 1)::integer) is distinct from (v_sealed -> (k - 1)::integer)
     order by k limit 1;
end
$$;
comment on function runproof_private.seal_difference(bytea, bytea, text[]) is
  'The first element (0-based, with its name and both values as JSON) in which a record''s canonical text now differs from its stored seal; element -1 when the seal is not a JSON array of that record''s length.';

create or replace function runproof_private.trace_check(t runproof.traces, p_resume integer)
  returns table (proof runproof.proof, succeeded integer, cost numeric, last_step_status text)
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_genesis bytea := runproof_private.genesis_hash(t.tenant_id, t.run_id, t.id);
  v_f record;
  v_last record;
  v_root bytea;
  v_diff record;
  v_result runproof.proof;
begin
  v_result.integrity_model := 'HASH_CHAIN';
  v_result.proof_format := 2;
  v_result.tenant_id := t.tenant_id;
  v_result.run_id := t.run_id;
  v_result.trace_id := t.id;
  v_result.trace_count := 1;
  v_result.verified_at := clock_timestamp();

  -- The chain head first (it is the root, and its index says how big the trace is), then the
  -- step checks, in parallel workers when the trace is large.
  select st.step_index, st.step_hash, st.status into v_last from runproof.trace_steps st
   where st.tenant_id = t.tenant_id and st.trace_id = t.id order by st.step_index desc limit 1;
  select * into v_f
    from runproof_private.step_faults(t.tenant_id, t.id, v_genesis, p_resume, coalesce(v_last.step_index + 1, 0)) f;
  v_root := coalesce(v_last.step_hash, v_genesis);
  v_result.step_count := v_f.step_count;
  v_result.erased_steps := v_f.erased;
  v_result.root_hash := runproof_private.hex(v_root);
  v_result.chain_length := v_f.step_count;
  succeeded := v_f.succeeded;
  cost := v_f.cost;
  last_step_status := v_last.status;

  if v_f.first_bad is not null then
    declare
      v_idx integer := v_f.first_bad;
      v_row runproof.trace_steps;
      v_prev_hash bytea;
    begin
      v_result.first_bad_attempt := t.attempt;
      v_result.first_bad_trace_id := t.id;
      v_result.first_bad_step_index := v_idx;
      v_result.chain_length := v_idx;
      v_result.verification_status := case when v_f.fault in ('gap', 'decision_missing', 'payload_missing', 'order', 'after_end')
                                           then 'BROKEN' else 'TAMPERED' end;
      -- Explain the fault (a second, indexed look at the rows involved).
      select * into v_row from runproof.trace_steps s where s.tenant_id = t.tenant_id and s.trace_id = t.id and s.step_index = v_idx;
      case v_f.fault
        when 'gap' then
          v_result.reason := format('step %s is missing from the chain (the next stored step is %s)', v_idx,
            (select min(s.step_index) from runproof.trace_steps s where s.tenant_id = t.tenant_id and s.trace_id = t.id and s.step_index > v_idx));
        when 'link' then
          v_prev_hash := case when v_idx = 0 then v_genesis else
            (select s.step_hash from runproof.trace_steps s where s.tenant_id = t.tenant_id and s.trace_id = t.id and s.step_index = v_idx - 1) end;
          v_result.reason := format('step %s: prev_hash %s does not link to %s', v_idx, runproof_private.hex(v_row.prev_hash),
            case when v_idx = 0 then 'the trace''s genesis hash ' else format('the step_hash of step %s ', v_idx - 1) end
            || runproof_private.hex(v_prev_hash));
        when 'hash' then
          v_result.reason := format('step %s: stored step_hash %s does not match sha256(prev_hash || sha256(content)) = %s; its content or its hash was changed',
            v_idx, runproof_private.hex(v_row.step_hash),
            runproof_private.hex(runproof_private.step_hash(v_row.prev_hash, runproof_private.step_canonical(v_row))));
        when 'decision_missing' then
          v_result.reason := format('step %s: its policy decision is missing', v_idx);
        when 'decision_hash' then
          v_result.reason := format('step %s: its policy decision was changed: the step holds decision_hash %s, the decision hashes to %s', v_idx,
            runproof_private.hex(v_row.decision_hash),
            (select runproof_private.hex(sha256(runproof_private.decision_canonical(d))) from runproof.policy_decisions d
              where d.tenant_id = t.tenant_id and d.trace_id = t.id and d.step_index = v_idx));
        when 'decision_other' then
          v_result.reason := format('step %s: its policy decision describes another step', v_idx);
        when 'payload_input', 'payload_output', 'payload_error' then
          v_result.reason := format('step %s: its %s payload does not match the commitment its hash covers', v_idx, substr(v_f.fault, 9));
        when 'payload_missing' then
          v_result.reason := format('step %s: its payloads are missing and no erasure of them is recorded', v_idx);
        when 'order' then
          v_result.reason := format('step %s executed plan step %s, but %s plan steps had succeeded before it', v_idx, v_row.plan_step,
            p_resume + (select count(*) from runproof.trace_steps s
                         where s.tenant_id = t.tenant_id and s.trace_id = t.id and s.step_index < v_idx and s.status = 'succeeded'));
        else
          v_result.reason := format('step %s %s, but the trace goes on after it', v_idx, v_row.status);
      end case;
      proof := v_result;
      return next;
      return;
    end;
  end if;

  -- The status must be what the steps say happened (check 7).
  if t.status = 'completed' and v_last.status is distinct from 'succeeded' and v_last.status is not null
     or t.status = 'failed' and v_last.status is distinct from 'failed' and v_last.status is distinct from 'denied'
     or t.status = 'aborted' and v_last.status = 'denied' then
    v_result.verification_status := 'BROKEN';
    v_result.first_bad_attempt := t.attempt;
    v_result.first_bad_trace_id := t.id;
    v_result.reason := format('the trace is %s but its last step %s', t.status,
      case when v_last.status is null then 'does not exist' else 'is ' || v_last.status end);
  elsif t.status = 'running' then
    if t.step_count is not null or t.root_hash is not null or t.seal is not null or t.seal_hash is not null then
      v_result.verification_status := 'TAMPERED';
      v_result.first_bad_attempt := t.attempt;
      v_result.first_bad_trace_id := t.id;
      v_result.reason := 'a running trace carries a seal';
    else
      v_result.verification_status := 'IN_PROGRESS';
    end if;
  elsif t.step_count is null or t.root_hash is null or t.seal is null or t.seal_hash is null then
    v_result.verification_status := 'BROKEN';
    v_result.first_bad_attempt := t.attempt;
    v_result.first_bad_trace_id := t.id;
    v_result.reason := format('the trace is %s but has no seal', t.status);
  elsif t.step_count <> v_f.step_count then
    v_result.verification_status := 'BROKEN';
    v_result.first_bad_attempt := t.attempt;
    v_result.first_bad_trace_id := t.id;
    v_result.first_bad_step_index := least(t.step_count, v_f.step_count);
    v_result.chain_length := least(t.step_count, v_f.step_count);
    v_result.reason := case when v_f.step_count < t.step_count
      then format('the seal says %s steps but the chain has %s: step %s onwards is missing', t.step_count, v_f.step_count, v_f.step_count)
      else format('the seal says %s steps but the chain has %s: step %s onwards was added after the seal', t.step_count, v_f.step_count, t.step_count) end;
  elsif t.root_hash <> v_root then
    v_result.verification_status := 'TAMPERED';
    v_result.first_bad_attempt := t.attempt;
    v_result.first_bad_trace_id := t.id;
    v_result.reason := format('the sealed root_hash %s does not match the chain''s root %s', runproof_private.hex(t.root_hash), v_result.root_hash);
  elsif t.seal_hash <> sha256(t.seal) then
    v_result.verification_status := 'TAMPERED';
    v_result.first_bad_attempt := t.attempt;
    v_result.first_bad_trace_id := t.id;
    v_result.reason := format('the trace''s seal_hash %s does not match sha256 of its seal %s',
      runproof_private.hex(t.seal_hash), runproof_private.hex(sha256(t.seal)));
  elsif t.seal <> runproof_private.trace_canonical(t) then
    v_result.verification_status := 'TAMPERED';
    v_result.first_bad_attempt := t.attempt;
    v_result.first_bad_trace_id := t.id;
    select * into v_diff from runproof_private.seal_difference(runproof_private.trace_canonical(t), t.seal,
      array['format', 'tenant_id', 'run_id', 'trace_id', 'attempt', 'status', 'started_at', 'completed_at', 'step_count', 'root_hash', 'metadata']);
    v_result.reason := case when v_diff.element between 0 and 10
      then format('the trace''s %s is %s but its seal says %s', v_diff.name, v_diff.now_value, v_diff.sealed_value)
      else 'the trace''s seal is not its canonical text' end;
  else
    v_result.verification_status := 'VERIFIED';
  end if;
  proof := v_result;
  return next;
end
$$;
comment on function runproof_private.trace_check(runproof.traces, integer) is
  'Verifies one trace (docs/proof-format.md section 9.2, checks 3 to 8), given how many plan steps succeeded in earlier attempts; also returns how many of its steps succeeded, their cost, and the status of its last step, for the run''s checks.';

create or replace function runproof_private.verify_trace_row(t runproof.traces) returns runproof.proof
  language sql stable
  set search_path = pg_catalog
  as $$
    select (c.proof).*
      from runproof_private.trace_check(t,
             (select count(*)::integer from runproof.traces e
                join runproof.trace_steps s on s.tenant_id = e.tenant_id and s.trace_id = e.id
               where e.tenant_id = t.tenant_id and e.run_id = t.run_id and e.attempt < t.attempt and s.status = 'succeeded')) c
  $$;
comment on function runproof_private.verify_trace_row(runproof.traces) is
  'Verifies one trace row on its own: trace_check, with the plan steps that succeeded in the run''s earlier attempts as they are stored.';

create or replace function runproof.verify_trace(trace_id uuid) returns runproof.proof
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_trace runproof.traces;
  v_result runproof.proof;
  v_to timestamptz;
begin
  select * into v_trace from runproof.traces t where t.id = verify_trace.trace_id;
  if not found then
    v_result.integrity_model := 'HASH_CHAIN';
    v_result.proof_format := 2;
    v_result.verification_status := 'NOT_FOUND';
    v_result.trace_id := verify_trace.trace_id;
    v_result.trace_count := 0;
    v_result.step_count := 0;
    v_result.erased_steps := 0;
    v_result.chain_length := 0;
    v_result.reason := 'no such trace';
    v_result.verified_at := clock_timestamp();
    return v_result;
  end if;
  v_result := runproof_private.verify_trace_row(v_trace);
  -- The trace's recorded lifetime: from its start to its seal (or its last step while running).
  v_to := coalesce(v_trace.completed_at,
                   (select max(s.recorded_at) from runproof.trace_steps s where s.tenant_id = v_trace.tenant_id and s.trace_id = v_trace.id),
                   v_trace.started_at);
  select g.status, g.detail into v_result.guard_status, v_result.guard_detail
    from runproof_private.guard_status(v_trace.started_at, v_to) g;
  return v_result;
end
$$;
comment on function runproof.verify_trace(uuid) is
  'Recomputes every hash of one trace from its stored rows and checks its steps, decisions, payloads, plan order, status and seal (docs/proof-format.md section 9.2): VERIFIED, IN_PROGRESS, TAMPERED, BROKEN or NOT_FOUND, with the first bad step and the reason; and guard_status from the DDL audit over the trace''s lifetime (started_at .. its seal).';
--! EndIncluded proof/verify_trace.sql
--! Included proof/run_proof.sql
-- A run's proof (docs/proof-format.md section 9): every trace verified in attempt order, then the
-- run's attempts, progress, cost and outcome checked against its steps and its seal against the
-- root recomputed from the rows, plus the guard status of the interval in which it was recorded.

create or replace function runproof_private.run_proof_chain(p_tenant_id uuid, p_run_id uuid) returns runproof.proof
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_run runproof.runs;
  v_trace runproof.traces;
  v_c record;
  v_result runproof.proof;
  v_expected_attempt integer := 1;
  v_succeeded integer := 0;
  v_cost numeric := 0;
  v_last_trace runproof.traces;
  v_last_step text;
  v_running_attempt integer;
  v_late_running integer;
  v_plan_steps integer;
  v_now bytea;
  v_diff record;
  v_seal_traces integer;
  v_now_traces integer;
begin
  v_result.integrity_model := 'HASH_CHAIN';
  v_result.proof_format := 2;
  v_result.tenant_id := p_tenant_id;
  v_result.run_id := p_run_id;
  v_result.trace_count := 0;
  v_result.step_count := 0;
  v_result.erased_steps := 0;
  v_result.chain_length := 0;
  v_result.verified_at := clock_timestamp();

  -- Check 1: the run row.
  select * into v_run from runproof.runs r where r.id = p_run_id
   order by (r.tenant_id = p_tenant_id) desc limit 1;
  if not found then
    if exists (select 1 from runproof.traces t where t.run_id = p_run_id and t.tenant_id = p_tenant_id) then
      v_result.verification_status := 'BROKEN';
      v_result.reason := 'the run row is missing but its traces exist';
    else
      v_result.verification_status := 'NOT_FOUND';
      v_result.reason := 'no such run for this tenant';
    end if;
    return v_result;
  end if;
  if v_run.tenant_id <> p_tenant_id
     and not exists (select 1 from runproof.traces t where t.run_id = p_run_id and t.tenant_id = p_tenant_id) then
    v_result.verification_status := 'NOT_FOUND';
    v_result.reason := 'no such run for this tenant';
    return v_result;
  end if;

  -- Checks 2 to 8: each trace, in attempt order. The first fault is kept; the rest are counted.
  for v_trace in select * from runproof.traces t where t.run_id = p_run_id order by t.attempt, t.id loop
    v_result.trace_count := v_result.trace_count + 1;
    if v_result.verification_status is null and v_trace.tenant_id <> v_run.tenant_id then
      v_result.verification_status := 'TAMPERED';
      v_result.first_bad_attempt := v_trace.attempt;
      v_result.first_bad_trace_id := v_trace.id;
      v_result.reason := format('trace %s (attempt %s) belongs to tenant %s but the run to tenant %s',
        v_trace.id, v_trace.attempt, v_trace.tenant_id, v_run.tenant_id);
    end if;
    if v_result.verification_status is null and v_trace.attempt <> v_expected_attempt then
      v_result.verification_status := 'BROKEN';
      v_result.first_bad_attempt := v_expected_attempt;
      v_result.reason := case when v_trace.attempt < v_expected_attempt
        then format('attempt %s appears twice', v_trace.attempt)
        else format('the trace of attempt %s is missing', v_expected_attempt) end;
    end if;
    if v_result.verification_status is null and v_running_attempt is not null then
      v_result.verification_status := 'BROKEN';
      v_result.first_bad_attempt := v_running_attempt;
      v_result.reason := format('attempt %s is still running but a later attempt exists', v_running_attempt);
    end if;
    v_expected_attempt := v_trace.attempt + 1;
    select * into v_c from runproof_private.trace_check(v_trace, v_succeeded) c;
    v_result.step_count := v_result.step_count + (v_c.proof).step_count;
    v_result.erased_steps := v_result.erased_steps + (v_c.proof).erased_steps;
    -- chain_length counts the steps verified in chain order, up to the first fault.
    if v_result.verification_status is null then
      v_result.chain_length := v_result.chain_length + (v_c.proof).chain_length;
    end if;
    if (v_c.proof).verification_status not in ('VERIFIED', 'IN_PROGRESS') and v_result.verification_status is null then
      v_result.verification_status := (v_c.proof).verification_status;
      v_result.first_bad_attempt := (v_c.proof).first_bad_attempt;
      v_result.first_bad_trace_id := (v_c.proof).first_bad_trace_id;
      v_result.first_bad_step_index := (v_c.proof).first_bad_step_index;
      v_result.reason := format('attempt %s: %s', v_trace.attempt, (v_c.proof).reason);
    end if;
    if v_trace.status = 'running' then
      v_running_attempt := v_trace.attempt;
    end if;
    v_succeeded := v_succeeded + v_c.succeeded;
    v_cost := v_cost + v_c.cost;
    v_last_trace := v_trace;
    v_last_step := v_c.last_step_status;
  end loop;

  -- The root as the rows are now (docs/proof-format.md section 8).
  v_now := runproof_private.run_seal_canonical(v_run);
  v_result.root_hash := runproof_private.hex(sha256(v_now));

  if v_result.verification_status is null and v_run.tenant_id <> p_tenant_id then
    v_result.verification_status := 'TAMPERED';
    v_result.reason := format('the run belongs to tenant %s but its traces to tenant %s', v_run.tenant_id, p_tenant_id);
  end if;
  -- Check 9: one trace per attempt.
  if v_result.verification_status is null and v_result.trace_count <> v_run.attempts then
    v_result.verification_status := 'BROKEN';
    if v_result.trace_count < v_run.attempts then
      v_result.first_bad_attempt := v_result.trace_count + 1;
      v_result.reason := format('the run made %s attempts but %s traces exist: the trace of attempt %s is missing',
        v_run.attempts, v_result.trace_count, v_result.trace_count + 1);
    else
      v_result.first_bad_attempt := v_run.attempts + 1;
      v_result.reason := format('the run made %s attempts but %s traces exist: attempt %s onwards is not one of its attempts',
        v_run.attempts, v_result.trace_count, v_run.attempts + 1);
    end if;
  end if;
  if v_result.verification_status is null and v_run.trace_count is not null and v_run.trace_count <> v_result.trace_count then
    v_result.verification_status := 'BROKEN';
    v_result.reason := format('the run''s trace_count says %s but %s traces exist', v_run.trace_count, v_result.trace_count);
  end if;
  -- Check 10: progress and cost are the steps'.
  if v_result.verification_status is null and v_run.next_plan_step <> v_succeeded then
    v_result.verification_status := 'BROKEN';
    v_result.reason := format('the run''s progress says %s plan steps succeeded but its steps show %s', v_run.next_plan_step, v_succeeded);
  end if;
  if v_result.verification_status is null and v_run.cost_cents <> v_cost then
    v_result.verification_status := 'BROKEN';
    v_result.reason := format('the run''s cost is %s cents but its steps cost %s', v_run.cost_cents, v_cost::numeric(14, 4));
  end if;
  -- Check 11: the outcome is what the steps say happened.
  if v_result.verification_status is null then
    v_plan_steps := case when jsonb_typeof(v_run.plan -> 'steps') = 'array' then jsonb_array_length(v_run.plan -> 'steps') end;
    v_result.reason := case v_run.status
      when 'succeeded' then
        case when v_succeeded <> coalesce(v_plan_steps, -1)
               then format('the run succeeded but %s of %s plan steps succeeded', v_succeeded, coalesce(v_plan_steps, 0))
             when v_last_trace.status is distinct from 'completed'
               then format('the run succeeded but its last attempt %s', coalesce('is ' || v_last_trace.status, 'does not exist')) end
      when 'halted' then
        case when v_last_trace.status is distinct from 'failed' or v_last_step is distinct from 'denied'
               then 'the run halted but its last attempt did not end with a denied step' end
      when 'failed' then
        case when v_last_trace.id is not null
              and not (v_last_trace.status = 'failed' and v_last_step = 'failed')
              and not (v_last_trace.status = 'aborted' and v_last_step is null)
               then 'the run failed but its last attempt did not end with a failed step' end
      when 'cancelled' then
        case when v_last_trace.id is not null and v_last_trace.status not in ('aborted', 'failed')
               then format('the run was cancelled but its last attempt is %s', v_last_trace.status) end
      when 'running' then
        case when v_last_trace.status is distinct from 'running'
               then 'the run is running but its last attempt is not' end
      else
        case when v_running_attempt is not null
               then format('the run is %s but attempt %s is still running', v_run.status, v_running_attempt) end
    end;
    if v_result.reason is not null then
      v_result.verification_status := 'BROKEN';
    end if;
  end if;
  -- Check 12: the seal.
  if v_result.verification_status is null then
    if not runproof_private.is_terminal_status(v_run.status) then
      if v_run.seal is not null or v_run.root_hash is not null or v_run.trace_count is not null then
        v_result.verification_status := 'TAMPERED';
        v_result.reason := 'an unfinished run carries a seal';
      end if;
    elsif v_run.seal is null or v_run.root_hash is null then
      v_result.verification_status := 'BROKEN';
      v_result.reason := format('the run is %s but has no seal', v_run.status);
    elsif v_run.root_hash <> sha256(v_run.seal) then
      v_result.verification_status := 'TAMPERED';
      v_result.reason := format('the run''s root_hash %s does not match sha256 of its seal %s',
        runproof_private.hex(v_run.root_hash), runproof_private.hex(sha256(v_run.seal)));
    elsif v_run.seal <> v_now then
      v_result.verification_status := 'TAMPERED';
      select * into v_diff from runproof_private.seal_difference(v_now, v_run.seal,
        array['format', 'tenant_id', 'run_id', 'content', 'status', 'error', 'attempts', 'next_plan_step', 'cost_cents',
              'planned_at', 'started_at', 'finished_at', 'trace seals', 'incidents']);
      v_result.reason := case
        when v_diff.element = 3 then
          'the run''s content (agent, goal, origin, plan, idempotency key, max attempts or creation time) differs from its seal'
        when v_diff.element between 4 and 11 then
          format('the run''s %s is %s but its seal says %s', v_diff.name, v_diff.now_value, v_diff.sealed_value)
        when v_diff.element = 12 then
          (select case when jsonb_array_length(a.sealed) <> jsonb_array_length(a.now)
                    then format('the run''s seal lists %s traces but %s exist', jsonb_array_length(a.sealed), jsonb_array_length(a.now))
                    else format('the seal of attempt %s differs from the one in the run''s seal',
                           (select min(k) from generate_series(1, jsonb_array_length(a.now)) k
                             where a.now -> (k - 1) is distinct from a.sealed -> (k - 1))) end
             from (select v_diff.now_value::jsonb as now, v_diff.sealed_value::jsonb as sealed) a)
        when v_diff.element = 13 then
          (select case when jsonb_array_length(a.sealed) <> jsonb_array_length(a.now)
                    then format('the run''s incidents differ from its seal: %s in the seal, %s now', jsonb_array_length(a.sealed), jsonb_array_length(a.now))
                    else format('incident %s differs from the one in the run''s seal',
                           (select i.id from runproof.incidents i where i.tenant_id = v_run.tenant_id and i.run_id = v_run.id
                             order by i.created_at, i.id offset (select min(k) - 1 from generate_series(1, jsonb_array_length(a.now)) k
                                                                  where a.now -> (k - 1) is distinct from a.sealed -> (k - 1)) limit 1)) end
             from (select v_diff.now_value::jsonb as now, v_diff.sealed_value::jsonb as sealed) a)
        when v_diff.element between 0 and 2 then 'the run''s seal is not the seal of this run'
        else 'the run''s seal is not its canonical text' end;
    end if;
  end if;
  if v_result.verification_status is null then
    v_result.verification_status := case
      when v_running_attempt is not null or not runproof_private.is_terminal_status(v_run.status) then 'IN_PROGRESS'
      else 'VERIFIED' end;
  end if;
  return v_result;
end
$$;
comment on function runproof_private.run_proof_chain(uuid, uuid) is
  'The hash-chain half of runproof.run_proof (guard_status and guard_detail left NULL): the checks of docs/proof-format.md section 9 (every trace, then the attempts, progress, cost, outcome and seal of the run).';

create or replace function runproof.run_proof(tenant_id uuid, run_id uuid) returns runproof.proof
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_result runproof.proof;
  v_from timestamptz;
  v_to timestamptz;
begin
  v_result := runproof_private.run_proof_chain(run_proof.tenant_id, run_proof.run_id);
  -- The run's recorded lifetime: from its creation to its last recorded change (for a finished
  -- run, updated_at is when it finished: a finished run never changes).
  select r.created_at, r.updated_at into v_from, v_to from runproof.runs r
   where r.id = run_proof.run_id order by (r.tenant_id = run_proof.tenant_id) desc limit 1;
  if found and v_result.verification_status <> 'NOT_FOUND' then
    select g.status, g.detail into v_result.guard_status, v_result.guard_detail
      from runproof_private.guard_status(v_from, v_to) g;
  end if;
  return v_result;
end
$$;
comment on function runproof.run_proof(uuid, uuid) is
  'Verifies a run (docs/proof-format.md section 9): recomputes every hash of every trace, step, decision and payload from the stored rows, checks the attempts, progress, cost and outcome against the steps and the run seal against the root, and returns HASH_CHAIN with VERIFIED, IN_PROGRESS, TAMPERED, BROKEN or NOT_FOUND, the counts (erased steps included), the root, the first bad step and the reason; and guard_status (GUARDED, UNGUARDED, UNAUDITED) from the DDL audit over the run''s recorded lifetime (created_at .. updated_at).';
--! EndIncluded proof/run_proof.sql
--! Included execution/record_step.sql
-- Recording a step: the step row (hashed by tg_trace_steps__chain), its payloads with their salted
-- commitments, the run's progress and the tenant's spend move in one transaction, or none does.

create or replace function runproof_private.record_step(
  p_tenant_id uuid, p_run_id uuid, p_trace_id uuid, p_step_index integer, p_plan_step integer,
  p_skill text, p_status text, p_input jsonb, p_output jsonb, p_error text,
  p_started_at timestamptz, p_finished_at timestamptz, p_duration_ms numeric, p_cost_cents numeric,
  p_level text default 'INFO', p_source text default 'worker')
  returns runproof.trace_steps
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_step runproof.trace_steps;
  v_next integer;
  v_decision text;
  -- Secrets are redacted (again: the worker did it first) before anything is committed to.
  v_input jsonb := runproof_private.redact(coalesce(p_input, '{}'));
  v_output jsonb := runproof_private.redact(p_output);
  v_input_salt bytea := runproof_private.random_salt();
  v_output_salt bytea := case when p_output is not null then runproof_private.random_salt() end;
  v_error_salt bytea := case when p_error is not null then runproof_private.random_salt() end;
begin
  select r.next_plan_step into v_next from runproof.runs r
   where r.tenant_id = p_tenant_id and r.id = p_run_id and r.status = 'running' for no key update;
  if not found then
    if not exists (select 1 from runproof.runs where tenant_id = p_tenant_id and id = p_run_id) then
      raise exception 'run % of tenant % not found', p_run_id, p_tenant_id using errcode = 'RPNFD', hint = 'check the run and tenant ids';
    end if;
    raise exception 'run % is not running', p_run_id using errcode = 'RPSTS', hint = 'steps are recorded only during an attempt';
  end if;
  if p_plan_step <> v_next then
    raise exception 'plan step % is out of order: run % is at plan step %', p_plan_step, p_run_id, v_next
      using errcode = 'RPSTS', hint = 'a succeeded plan step is never executed or recorded again';
  end if;
  select d.decision into v_decision from runproof.policy_decisions d
   where d.tenant_id = p_tenant_id and d.trace_id = p_trace_id and d.step_index = p_step_index;
  insert into runproof.trace_steps (tenant_id, run_id, trace_id, step_index, plan_step, skill, status, policy_decision,
      input_commitment, output_commitment, error_commitment, started_at, finished_at, duration_ms, cost_cents, source, level)
  values (p_tenant_id, p_run_id, p_trace_id, p_step_index, p_plan_step, p_skill, p_status, coalesce(v_decision, 'allow'),
      runproof_private.payload_commitment('input', v_input_salt, v_input::text),
      runproof_private.payload_commitment('output', v_output_salt, v_output::text),
      runproof_private.payload_commitment('error', v_error_salt, p_error),
      p_started_at, p_finished_at, p_duration_ms, coalesce(p_cost_cents, 0), p_source, p_level)
  returning * into v_step;
  insert into runproof.step_payloads (tenant_id, run_id, trace_id, step_index, input, input_salt, output, output_salt, error, error_salt)
  values (p_tenant_id, p_run_id, p_trace_id, p_step_index, v_input, v_input_salt, v_output, v_output_salt, p_error, v_error_salt);
  -- The run's progress moves in the same transaction as its step, or not at all.
  update runproof.runs
     set next_plan_step = case when p_status = 'succeeded' then p_plan_step + 1 else next_plan_step end,
         cost_cents = cost_cents + coalesce(p_cost_cents, 0)
   where tenant_id = p_tenant_id and id = p_run_id;
  if coalesce(p_cost_cents, 0) > 0 then
    insert into runproof_private.tenant_daily_spend as s (tenant_id, day, spent_cents)
    values (p_tenant_id, (now() at time zone 'UTC')::date, p_cost_cents)
    on conflict (tenant_id, day) do update set spent_cents = s.spent_cents + excluded.spent_cents;
  end if;
  return v_step;
end
$$;
comment on function runproof_private.record_step(uuid, uuid, uuid, integer, integer, text, text, jsonb, jsonb, text, timestamptz, timestamptz, numeric, numeric, text, text) is
  'Records a step (input and output redacted, then stored in runproof.step_payloads with salted commitments in the step; hashes computed by the chain trigger) and the run''s progress and spend, in one transaction.';
--! EndIncluded execution/record_step.sql
--! Included execution/attempts.sql
-- Execution attempts: each opens a trace and every attempt ends with its trace sealed (completed,
-- failed or aborted) and the run moved on in the same transaction, with its incident.

create or replace function runproof_private.start_attempt(p_tenant_id uuid, p_run_id uuid, p_metadata jsonb default '{}')
  returns runproof.traces
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_run runproof.runs;
  v_trace runproof.traces;
begin
  update runproof.runs set status = 'running', attempts = attempts + 1
   where tenant_id = p_tenant_id and id = p_run_id and status in ('planned', 'retrying')
  returning * into v_run;
  if not found then
    if not exists (select 1 from runproof.runs where tenant_id = p_tenant_id and id = p_run_id) then
      raise exception 'run % of tenant % not found', p_run_id, p_tenant_id using errcode = 'RPNFD', hint = 'check the run and tenant ids';
    end if;
    raise exception 'run % cannot start an attempt (status %)', p_run_id,
      (select status from runproof.runs where tenant_id = p_tenant_id and id = p_run_id)
      using errcode = 'RPSTS', hint = 'only planned or retrying runs start attempts';
  end if;
  insert into runproof.traces (tenant_id, run_id, attempt, metadata)
  values (p_tenant_id, p_run_id, v_run.attempts, coalesce(p_metadata, '{}'))
  returning * into v_trace;
  return v_trace;
end
$$;
comment on function runproof_private.start_attempt(uuid, uuid, jsonb) is
  'Moves a planned or retrying run to running and opens the trace of its next attempt, in one transaction.';

create or replace function runproof_private.seal_trace(p_tenant_id uuid, p_trace_id uuid, p_status text, p_metadata jsonb default null)
  returns runproof.traces
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_trace runproof.traces;
  v_last_index integer;
  v_last_hash bytea;
begin
  if p_status is null or p_status not in ('completed', 'failed', 'aborted') then
    raise exception 'a trace is sealed as completed, failed or aborted, not %', coalesce(p_status, 'NULL')
      using errcode = 'RPVAL', hint = 'pass completed, failed or aborted';
  end if;
  select * into v_trace from runproof.traces where tenant_id = p_tenant_id and id = p_trace_id for update;
  if not found then
    raise exception 'trace % of tenant % not found', p_trace_id, p_tenant_id using errcode = 'RPNFD', hint = 'check the trace id';
  end if;
  select s.step_index, s.step_hash into v_last_index, v_last_hash
    from runproof.trace_steps s where s.tenant_id = p_tenant_id and s.trace_id = p_trace_id
   order by s.step_index desc limit 1;
  update runproof.traces
     set status = p_status,
         completed_at = clock_timestamp(),
         step_count = coalesce(v_last_index + 1, 0),
         root_hash = coalesce(v_last_hash, runproof_private.genesis_hash(tenant_id, run_id, id)),
         metadata = coalesce(p_metadata, metadata)
   where tenant_id = p_tenant_id and id = p_trace_id
  returning * into v_trace;
  return v_trace;
end
$$;
comment on function runproof_private.seal_trace(uuid, uuid, text, jsonb) is
  'Seals a running trace as completed, failed or aborted, reading step_count and root_hash off its chain.';

create or replace function runproof_private.end_attempt(
  p_tenant_id uuid, p_run_id uuid, p_trace_id uuid, p_trace_status text, p_run_status text,
  p_error text default null, p_incident_kind text default null, p_incident_details jsonb default '{}',
  p_retry_base_ms integer default 1000, p_trace_metadata jsonb default null)
  returns runproof.runs
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v runproof.runs;
  v_failed integer;
begin
  perform runproof_private.seal_trace(p_tenant_id, p_trace_id, p_trace_status, p_trace_metadata);
  if p_run_status = 'retrying' then
    -- Failed attempts count against max_attempts; crashed (aborted) ones do not.
    select count(*) into v_failed from runproof.traces t
     where t.tenant_id = p_tenant_id and t.run_id = p_run_id and t.status = 'failed';
    if v_failed >= (select r.max_attempts from runproof.runs r where r.tenant_id = p_tenant_id and r.id = p_run_id) then
      p_run_status := 'failed';
      p_error := coalesce(p_error, 'step failed') || format(' (no attempts left: %s failed)', v_failed);
      p_incident_kind := 'run_failed';
    end if;
  end if;
  -- The incident first: a final status seals the run, and its seal lists its incidents.
  if p_incident_kind is not null then
    insert into runproof.incidents (tenant_id, run_id, trace_id, kind, severity, message, details)
    values (p_tenant_id, p_run_id, p_trace_id, p_incident_kind,
            case when p_incident_kind in ('run_halted', 'budget_exceeded', 'skill_denied') then 'warning' else 'error' end,
            coalesce(p_error, p_incident_kind), coalesce(p_incident_details, '{}'));
  end if;
  update runproof.runs set status = p_run_status,
         error = case when p_run_status = 'succeeded' then null else coalesce(p_error, error) end
   where tenant_id = p_tenant_id and id = p_run_id
  returning * into v;
  if v.status = 'retrying' then
    -- Exponential backoff over the failed attempts (base, 2 x base, 4 x base ...), at most 10 minutes.
    perform runproof_private.add_run_job('execute_run', p_tenant_id, p_run_id,
      now() + make_interval(secs => least(p_retry_base_ms * 2 ^ greatest(coalesce(v_failed, 0) - 1, 0), 600000) / 1000.0));
  end if;
  delete from runproof_private.cancel_requests c where c.tenant_id = p_tenant_id and c.run_id = p_run_id and runproof_private.is_terminal_status(v.status);
  return v;
end
$$;
comment on function runproof_private.end_attempt(uuid, uuid, uuid, text, text, text, text, jsonb, integer, jsonb) is
  'Ends an attempt in one transaction: seals its trace, moves the run on (a retry is scheduled as a new job after an exponential backoff from p_retry_base_ms over the failed attempts, at most 10 minutes; no attempts left fails the run), and records the incident.';
--! EndIncluded execution/attempts.sql
--! Included execution/planning.sql
-- Planning ends in one transaction either way: the plan stored (validated by tg_runs__plan_check)
-- with the run's execution job, or the run failed with its incident.

create or replace function runproof_private.store_plan(p_tenant_id uuid, p_run_id uuid, p_plan jsonb) returns runproof.runs
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v runproof.runs;
begin
  if p_plan is null then
    raise exception 'plan must not be null' using errcode = 'RPPLN', hint = 'pass {"version": 1, "steps": [...]}';
  end if;
  update runproof.runs set plan = p_plan, status = 'planned'
   where tenant_id = p_tenant_id and id = p_run_id and status = 'pending'
  returning * into v;
  if not found then
    if not exists (select 1 from runproof.runs where tenant_id = p_tenant_id and id = p_run_id) then
      raise exception 'run % of tenant % not found', p_run_id, p_tenant_id using errcode = 'RPNFD', hint = 'check the run and tenant ids';
    end if;
    raise exception 'run % is not pending', p_run_id using errcode = 'RPSTS', hint = 'a plan is stored once, while the run is pending';
  end if;
  perform runproof_private.add_run_job('execute_run', p_tenant_id, p_run_id);
  return v;
end
$$;
comment on function runproof_private.store_plan(uuid, uuid, jsonb) is 'Stores a pending run''s plan (validated by the table''s trigger) and adds its execution job, in one transaction.';

create or replace function runproof_private.fail_planning(p_tenant_id uuid, p_run_id uuid, p_error text) returns runproof.runs
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v runproof.runs;
begin
  select r.* into v from runproof.runs r where r.tenant_id = p_tenant_id and r.id = p_run_id for update;
  if not found then
    raise exception 'run % of tenant % not found', p_run_id, p_tenant_id using errcode = 'RPNFD', hint = 'check the run and tenant ids';
  end if;
  if v.status <> 'pending' then
    raise exception 'run % is not pending', p_run_id using errcode = 'RPSTS', hint = 'only a pending run can fail planning';
  end if;
  -- The incident first: failing seals the run, and its seal lists its incidents.
  insert into runproof.incidents (tenant_id, run_id, kind, severity, message, details)
  values (p_tenant_id, p_run_id, 'planning_failed', 'error', p_error, '{}');
  update runproof.runs set status = 'failed', error = p_error
   where tenant_id = p_tenant_id and id = p_run_id
  returning * into v;
  return v;
end
$$;
comment on function runproof_private.fail_planning(uuid, uuid, text) is 'Fails a run whose planning failed, with its incident, in one transaction.';
--! EndIncluded execution/planning.sql
--! Included execution/recovery.sql
-- Crash recovery: workers send heartbeats; the jobs of a worker that went silent are unlocked
-- (graphile-worker would wait 4 hours), and its run's open trace is sealed aborted, to be resumed.

create or replace function runproof_private.recover_orphan(p_tenant_id uuid, p_run_id uuid, p_worker text default null)
  returns runproof.runs
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v runproof.runs;
  v_trace uuid;
  v_stalled integer;
  c_stalled_limit constant integer := 20;
begin
  select r.* into v from runproof.runs r where r.tenant_id = p_tenant_id and r.id = p_run_id for update;
  if v.status <> 'running' then
    return v;
  end if;
  select t.id into v_trace from runproof.traces t
   where t.tenant_id = p_tenant_id and t.run_id = p_run_id and t.status = 'running';
  if v_trace is not null then
    perform runproof_private.seal_trace(p_tenant_id, v_trace, 'aborted',
      jsonb_build_object('aborted_because', 'the worker running this attempt stopped (crash or lost connection)', 'recovered_by', p_worker));
  end if;
  -- Attempts abandoned in a row without recording a single step: a run that kills its workers, or
  -- a fleet that cannot keep a worker up, would otherwise be picked up and abandoned forever.
  select count(*) into v_stalled from runproof.traces t
   where t.tenant_id = p_tenant_id and t.run_id = p_run_id and t.status = 'aborted' and t.step_count = 0
     and t.attempt > coalesce((select max(t2.attempt) from runproof.traces t2
                                where t2.tenant_id = p_tenant_id and t2.run_id = p_run_id
                                  and (t2.status <> 'aborted' or t2.step_count > 0)), 0);
  -- Each incident is written before the status change that it explains: a final status seals the
  -- run, incidents included, and nothing is added to a sealed run.
  if v_stalled >= c_stalled_limit then
    insert into runproof.incidents (tenant_id, run_id, trace_id, kind, severity, message, details)
    values (p_tenant_id, p_run_id, v_trace, 'run_failed', 'error',
            format('abandoned by its worker %s times in a row before it recorded a step; giving up', v_stalled),
            jsonb_build_object('stalled_attempts', v_stalled, 'resume_at_plan_step', v.next_plan_step, 'recovered_by', p_worker));
    update runproof.runs set status = 'failed',
           error = format('abandoned by its worker %s times in a row before it recorded a step; giving up', v_stalled)
     where tenant_id = p_tenant_id and id = p_run_id returning * into v;
    return v;
  end if;
  insert into runproof.incidents (tenant_id, run_id, trace_id, kind, severity, message, details)
  values (p_tenant_id, p_run_id, v_trace, 'worker_crashed', 'warning',
          'the attempt was abandoned by its worker; a new attempt resumes after the last succeeded step',
          jsonb_build_object('resume_at_plan_step', v.next_plan_step, 'recovered_by', p_worker));
  update runproof.runs set status = 'retrying' where tenant_id = p_tenant_id and id = p_run_id returning * into v;
  return v;
end
$$;
comment on function runproof_private.recover_orphan(uuid, uuid, text) is
  'For a run left running by a dead worker: seals its trace as aborted, moves the run to retrying and records a worker_crashed incident, in one transaction; after 20 attempts in a row abandoned before recording a step, fails the run instead (run_failed incident).';

create or replace function runproof_private.worker_heartbeat(p_process_id text, p_worker_ids text[] default '{}', p_hostname text default '', p_pid integer default null)
  returns void
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  insert into runproof_private.worker_heartbeats (worker_id, process_id, hostname, pid)
  select w, p_process_id, coalesce(p_hostname, ''), p_pid from unnest(p_worker_ids) w
  on conflict (worker_id) do update set process_id = excluded.process_id, last_seen_at = now();
  update runproof_private.worker_heartbeats set last_seen_at = now() where process_id = p_process_id;
end
$$;
comment on function runproof_private.worker_heartbeat(text, text[], text, integer) is 'Marks a worker process and its workers alive.';

create or replace function runproof_private.recover_stale_workers(p_stale_after interval default interval '10 seconds')
  returns text[]
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_ids text[];
begin
  -- A job locked longer than p_stale_after by a worker with no fresh heartbeat belongs to a dead worker.
  select array_agg(distinct j.locked_by) into v_ids
    from graphile_worker.jobs j
   where j.locked_by is not null and j.locked_at < now() - p_stale_after
     and not exists (select 1 from runproof_private.worker_heartbeats h
                      where h.worker_id = j.locked_by and h.last_seen_at >= now() - p_stale_after);
  if v_ids is not null then
    perform graphile_worker.force_unlock_workers(v_ids);
    delete from runproof_private.worker_heartbeats where worker_id = any (v_ids);
  end if;
  delete from runproof_private.worker_heartbeats where last_seen_at < now() - interval '1 hour';
  return coalesce(v_ids, '{}');
end
$$;
comment on function runproof_private.recover_stale_workers(interval) is
  'Unlocks the jobs of workers whose heartbeat is older than p_stale_after (graphile-worker would otherwise keep them locked for 4 hours) and returns their ids.';
--! EndIncluded execution/recovery.sql
--! Included api/erasure.sql
-- Erasing personal data without breaking a proof: step payloads (input, output, error) are
-- deleted with their salts, and the erasure is recorded (who, when, why, which steps). Every hash
-- stays as it was, so the record still verifies, with the erased steps counted. A tenant may set a
-- payload retention; the worker's cron task erase_expired_payloads applies it.

create or replace function runproof_private.erase_steps(p_tenant_id uuid, p_steps jsonb, p_reason text, p_scope jsonb)
  returns runproof.payload_erasures
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v runproof.payload_erasures;
  v_by text;
begin
  if runproof_private.is_blank(p_reason) or length(p_reason) > 2000 then
    raise exception 'an erasure needs a reason of 1 to 2000 characters'
      using errcode = 'RPVAL', hint = 'say why, e.g. ''GDPR request 2026-117'' or ''retention''';
  end if;
  -- Who: the API key's tenant in a GraphQL request, else the database roles of the session.
  v_by := case when runproof_private.current_tenant_id() is not null
               then format('tenant %s (API request)', runproof_private.current_tenant_id())
               else format('%s (session %s)', current_user, session_user) end;
  insert into runproof.payload_erasures (tenant_id, erased_by, reason, scope, step_count)
  values (p_tenant_id, v_by, p_reason, p_scope, jsonb_array_length(p_steps))
  returning * into v;
  insert into runproof.payload_erasure_steps (tenant_id, erasure_id, run_id, trace_id, step_index)
  select p_tenant_id, v.id, (e ->> 'run_id')::uuid, (e ->> 'trace_id')::uuid, (e ->> 'step_index')::integer
    from jsonb_array_elements(p_steps) e;
  delete from runproof.step_payloads p
   using runproof.payload_erasure_steps e
   where e.tenant_id = p_tenant_id and e.erasure_id = v.id
     and p.tenant_id = e.tenant_id and p.trace_id = e.trace_id and p.step_index = e.step_index;
  return v;
end
$$;
comment on function runproof_private.erase_steps(uuid, jsonb, text, jsonb) is
  'Records an erasure of the given steps ([{run_id, trace_id, step_index}, ...]) and deletes their payloads, in one transaction. Called by erase_payloads and erase_expired_payloads.';

create or replace function runproof.erase_payloads(
  run_id uuid default null, older_than interval default null, reason text default null, tenant_id uuid default null)
  returns runproof.payload_erasures
  language plpgsql volatile security definer
  set search_path = pg_catalog
  as $$
#variable_conflict use_column
declare
  v_tenant uuid := runproof_private.request_tenant(erase_payloads.tenant_id);
  v_steps jsonb;
begin
  if (erase_payloads.run_id is null) = (erase_payloads.older_than is null) then
    raise exception 'erase_payloads needs either run_id or older_than'
      using errcode = 'RPVAL', hint = 'erase one run''s payloads (run_id), or those of the tenant''s runs that finished before now() - older_than';
  end if;
  if erase_payloads.older_than is not null and erase_payloads.older_than < interval '0' then
    raise exception 'older_than must not be negative, got %', erase_payloads.older_than
      using errcode = 'RPVAL', hint = 'pass an age, e.g. ''30 days''';
  end if;
  if erase_payloads.run_id is not null
     and not exists (select 1 from runproof.runs r where r.tenant_id = v_tenant and r.id = erase_payloads.run_id) then
    raise exception 'run % not found for tenant %', erase_payloads.run_id, v_tenant
      using errcode = 'RPNFD', hint = 'check the run id (runproof runs list)';
  end if;
  select coalesce(jsonb_agg(jsonb_build_object('run_id', p.run_id, 'trace_id', p.trace_id, 'step_index', p.step_index)
                            order by p.run_id, p.trace_id, p.step_index), '[]')
    into v_steps
    from runproof.runs r
    join runproof.traces t on t.tenant_id = r.tenant_id and t.run_id = r.id
    join runproof.step_payloads p on p.tenant_id = t.tenant_id and p.trace_id = t.id
   where r.tenant_id = v_tenant
     and (erase_payloads.run_id is null or r.id = erase_payloads.run_id)
     and (erase_payloads.older_than is null or r.finished_at < now() - erase_payloads.older_than);
  return runproof_private.erase_steps(v_tenant, v_steps, erase_payloads.reason,
    jsonb_strip_nulls(jsonb_build_object('run_id', erase_payloads.run_id, 'older_than', erase_payloads.older_than::text)));
end
$$;
comment on function runproof.erase_payloads(uuid, interval, text, uuid) is
  'Erases step payloads (input, output, error and their salts) of one run (run_id) or of the tenant''s runs that finished more than older_than ago, and records the erasure (who, when, why, which steps). Proofs stay VERIFIED and count the erased steps. In a GraphQL request tenant_id may be omitted: the API key decides.';

create or replace function runproof_private.set_payload_retention(p_tenant_id uuid, p_retention interval) returns runproof.tenants
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v runproof.tenants;
begin
  if p_retention is not null and p_retention <= interval '0' then
    raise exception 'payload retention must be a positive interval, got %', p_retention
      using errcode = 'RPVAL', hint = 'pass e.g. ''180 days'', or NULL to keep payloads';
  end if;
  update runproof.tenants set payload_retention = p_retention where id = p_tenant_id returning * into v;
  if not found then
    raise exception 'tenant % not found', p_tenant_id using errcode = 'RPNFD', hint = 'list tenants with runproof tenants list';
  end if;
  return v;
end
$$;
comment on function runproof_private.set_payload_retention(uuid, interval) is
  'Sets how long a tenant''s step payloads are kept after their run finished (NULL: kept). The erase_expired_payloads task erases what is older.';

create or replace function runproof_private.erase_expired_payloads(p_limit integer default 10000)
  returns setof runproof.payload_erasures
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_tenant record;
  v_steps jsonb;
begin
  for v_tenant in select t.id, t.payload_retention from runproof.tenants t where t.payload_retention is not null order by t.id loop
    select coalesce(jsonb_agg(x.step order by x.step ->> 'run_id', x.step ->> 'trace_id', (x.step ->> 'step_index')::integer), '[]')
      into v_steps
      from (select jsonb_build_object('run_id', p.run_id, 'trace_id', p.trace_id, 'step_index', p.step_index) as step
              from runproof.runs r
              join runproof.traces t on t.tenant_id = r.tenant_id and t.run_id = r.id
              join runproof.step_payloads p on p.tenant_id = t.tenant_id and p.trace_id = t.id
             where r.tenant_id = v_tenant.id and r.finished_at < now() - v_tenant.payload_retention
             limit p_limit) x;
    if jsonb_array_length(v_steps) > 0 then
      return next runproof_private.erase_steps(v_tenant.id, v_steps, 'retention',
        jsonb_build_object('retention', v_tenant.payload_retention::text));
    end if;
  end loop;
end
$$;
comment on function runproof_private.erase_expired_payloads(integer) is
  'Applies every tenant''s payload retention: erases (and records) the payloads of runs that finished longer ago than the retention, at most p_limit steps per tenant per call. Run by the worker''s cron task erase_expired_payloads.';
--! EndIncluded api/erasure.sql
--! Included api/graphql.sql
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
--! EndIncluded api/graphql.sql

-- Issue 13 (GraphQL/HTTP half): API keys may expire, their revocation is announced, names refuse
-- control and bidi characters, agents' limits are named, plan step inputs fit their skill's schema.
alter table runproof_private.api_keys add column if not exists expires_at timestamptz;
comment on column runproof_private.api_keys.expires_at is 'When the key stops authenticating (RPKEX); NULL: never.';
drop function if exists runproof_private.create_api_key(uuid, text);

--! Included common/values.sql
-- Value helpers shared by the tables' checks and the functions: what counts as blank, how a value
-- is shown in an error, which origin ids are placeholders, which run statuses are final.
-- Applied before the tables, whose CHECK constraints call some of them.

create or replace function runproof_private.hex(b bytea) returns text
  language sql immutable strict parallel safe
  as $$ select encode(b, 'hex') $$;
comment on function runproof_private.hex(bytea) is 'Lower-case hex of a hash, the form hashes take in proofs and bundles.';

create or replace function runproof_private.is_blank(p text) returns boolean
  language sql immutable parallel safe
  as $$ select p is null or p ~ '^[\s\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]*$' $$;
comment on function runproof_private.is_blank(text) is
  'Whether a text has no visible character: NULL, empty, or only white space (ASCII or Unicode spaces, zero-width space, BOM).';

create or replace function runproof_private.visible(p text) returns text
  language plpgsql immutable parallel safe
  set search_path = pg_catalog
  as $$
declare
  v text := '';
  c text;
begin
  -- JSON-quote the value (which spells out C0 controls), then spell out the invisible characters
  -- JSON leaves as they are. (Spelling them out first had to_json escape the backslash: "\\u200b".)
  foreach c in array regexp_split_to_array(to_json(coalesce(p, ''))::text, '') loop
    if c ~ '[\u007f-\u00a0\u00ad\u061c\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u2066-\u2069\u3000\ufeff]' then
      v := v || '\u' || lpad(to_hex(ascii(c)), 4, '0');
    else
      v := v || c;
    end if;
  end loop;
  return v;
end
$$;
comment on function runproof_private.visible(text) is 'A value as error messages show it: JSON-quoted, with control, invisible and bidirectional formatting characters spelled out (\u00a0, \u200b, \u202e, ...).';

create or replace function runproof_private.reserved_origin_system_ids() returns text[]
  language sql immutable parallel safe
  as $$ select array['legacy-migration', 'legacy', 'default', 'unknown', 'none', 'null', 'undefined', 'n/a', 'na', 'tbd', 'todo', 'changeme', 'system', 'migration'] $$;
comment on function runproof_private.reserved_origin_system_ids() is
  'origin_system_id values that are rejected (compared case-insensitively): placeholders that say nothing about where a run came from. ''legacy-migration'' is the default that once rejected itself.';

create or replace function runproof_private.is_terminal_status(p_status text) returns boolean
  language sql immutable parallel safe
  as $$ select p_status in ('succeeded', 'failed', 'halted', 'cancelled') $$;
comment on function runproof_private.is_terminal_status(text) is 'Whether a run status is final (nothing about the run changes afterwards).';

create or replace function runproof_private.has_invisible_chars(p text) returns boolean
  language sql immutable parallel safe
  as $$ select p ~ '[[:cntrl:]\u0080-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]' $$;
comment on function runproof_private.has_invisible_chars(text) is
  'Whether a text holds a control character (C0, DEL, C1), a soft hyphen, a zero-width character, a line or paragraph separator, or a bidirectional formatting character (embeddings, overrides, isolates, marks): characters that make a name look like another.';
--! EndIncluded common/values.sql
--! Included common/json_schema.sql
-- The JSON Schema subset that skills register as runproof.skills.input_schema (zod's
-- toJSONSchema output for the built-in skills): type, enum, const, anyOf/oneOf, $ref to #/$defs,
-- properties, required, additionalProperties, propertyNames, items, min/maxItems, min/maxLength,
-- pattern, minimum/maximum (and their exclusive forms), format "uri" (has a scheme). Plans are
-- checked against it when stored, so a step's bad input is refused then, not at run time.

create or replace function runproof_private.json_shown(p jsonb) returns text
  language sql immutable parallel safe
  as $$ select case when length(p::text) > 60 then left(p::text, 57) || '...' else p::text end $$;
comment on function runproof_private.json_shown(jsonb) is 'A JSON value as an error message shows it: its JSON text, cut to 60 characters.';

create or replace function runproof_private.json_type_noun(p_type text) returns text
  language sql immutable parallel safe
  as $$ select case p_type when 'integer' then 'an integer' when 'object' then 'an object' when 'array' then 'an array'
                           when 'null' then 'null' else 'a ' || p_type end $$;
comment on function runproof_private.json_type_noun(text) is 'A JSON Schema type as an error message names it: "an integer", "a string", ...';

create or replace function runproof_private.json_schema_problem(
  p_schema jsonb, p_value jsonb, p_path text default 'input', p_root jsonb default null, p_depth integer default 0)
  returns text
  language plpgsql immutable
  set search_path = pg_catalog
  as $$
declare
  v_root jsonb := coalesce(p_root, p_schema);
  v_type text := jsonb_typeof(p_value);
  v_sub jsonb;
  v_ok boolean;
  v_t text;
  v_types text[];
  v_problem text;
  v_key text;
  v_text text;
  v_num numeric;
  v_i integer;
begin
  -- A $ref cycle that never descends into the value would recurse for ever: stop checking there.
  if p_depth > 64 or p_schema is null then
    return null;
  end if;
  if jsonb_typeof(p_schema) = 'boolean' then
    return case when p_schema = 'false'::jsonb then format('%s is not allowed', p_path) end;
  end if;
  if jsonb_typeof(p_schema) <> 'object' then
    return null;
  end if;

  if jsonb_typeof(p_schema -> '$ref') = 'string' and (p_schema ->> '$ref' = '#' or p_schema ->> '$ref' like '#/%') then
    v_sub := case when p_schema ->> '$ref' = '#' then v_root
                  else v_root #> string_to_array(substr(p_schema ->> '$ref', 3), '/') end;
    v_problem := runproof_private.json_schema_problem(v_sub, p_value, p_path, v_root, p_depth + 1);
    if v_problem is not null then
      return v_problem;
    end if;
  end if;

  foreach v_key in array array['anyOf', 'oneOf'] loop
    if jsonb_typeof(p_schema -> v_key) = 'array' then
      v_ok := false;
      for v_sub in select value from jsonb_array_elements(p_schema -> v_key) loop
        if runproof_private.json_schema_problem(v_sub, p_value, p_path, v_root, p_depth + 1) is null then
          v_ok := true;
          exit;
        end if;
      end loop;
      if not v_ok then
        return format('%s does not match any of its allowed forms, got %s', p_path, runproof_private.json_shown(p_value));
      end if;
    end if;
  end loop;

  if p_schema ? 'type' then
    v_types := case jsonb_typeof(p_schema -> 'type')
                 when 'array' then array(select jsonb_array_elements_text(p_schema -> 'type'))
                 else array[p_schema ->> 'type'] end;
    v_ok := v_type = any (v_types)
            or ('number' = any (v_types) and v_type = 'number')
            or ('integer' = any (v_types) and v_type = 'number' and (p_value #>> '{}')::numeric = trunc((p_value #>> '{}')::numeric));
    if not v_ok then
      return format('%s must be %s, got %s', p_path,
                    array_to_string(array(select runproof_private.json_type_noun(t) from unnest(v_types) t), ' or '),
                    runproof_private.json_shown(p_value));
    end if;
  end if;

  if jsonb_typeof(p_schema -> 'enum') = 'array'
     and not exists (select 1 from jsonb_array_elements(p_schema -> 'enum') e where e.value = p_value) then
    return format('%s must be one of %s, got %s', p_path,
                  (select string_agg(e.value::text, ', ') from jsonb_array_elements(p_schema -> 'enum') e),
                  runproof_private.json_shown(p_value));
  end if;
  if p_schema ? 'const' and p_schema -> 'const' <> p_value then
    return format('%s must be %s, got %s', p_path, (p_schema -> 'const')::text, runproof_private.json_shown(p_value));
  end if;

  if v_type = 'string' then
    v_text := p_value #>> '{}';
    if jsonb_typeof(p_schema -> 'minLength') = 'number' and length(v_text) < (p_schema ->> 'minLength')::numeric then
      return format('%s must be at least %s characters long, got %s', p_path, p_schema ->> 'minLength', length(v_text));
    end if;
    if jsonb_typeof(p_schema -> 'maxLength') = 'number' and length(v_text) > (p_schema ->> 'maxLength')::numeric then
      return format('%s must be at most %s characters long, got %s', p_path, p_schema ->> 'maxLength', length(v_text));
    end if;
    if jsonb_typeof(p_schema -> 'pattern') = 'string' then
      begin
        if v_text !~ (p_schema ->> 'pattern') then
          return format('%s must match the pattern %s, got %s', p_path, p_schema ->> 'pattern', runproof_private.json_shown(p_value));
        end if;
      exception when invalid_regular_expression then
        null; -- a pattern Postgres's regular expressions cannot read is not checked here (the worker checks it)
      end;
    end if;
    if p_schema ->> 'format' = 'uri' and v_text !~ '^[A-Za-z][A-Za-z0-9+.-]*:' then
      return format('%s must be a URI with a scheme (e.g. https://...), got %s', p_path, runproof_private.json_shown(p_value));
    end if;
  elsif v_type = 'number' then
    v_num := (p_value #>> '{}')::numeric;
    if jsonb_typeof(p_schema -> 'minimum') = 'number' and v_num < (p_schema ->> 'minimum')::numeric then
      return format('%s must be at least %s, got %s', p_path, p_schema ->> 'minimum', v_num);
    end if;
    if jsonb_typeof(p_schema -> 'maximum') = 'number' and v_num > (p_schema ->> 'maximum')::numeric then
      return format('%s must be at most %s, got %s', p_path, p_schema ->> 'maximum', v_num);
    end if;
    if jsonb_typeof(p_schema -> 'exclusiveMinimum') = 'number' and v_num <= (p_schema ->> 'exclusiveMinimum')::numeric then
      return format('%s must be more than %s, got %s', p_path, p_schema ->> 'exclusiveMinimum', v_num);
    end if;
    if jsonb_typeof(p_schema -> 'exclusiveMaximum') = 'number' and v_num >= (p_schema ->> 'exclusiveMaximum')::numeric then
      return format('%s must be less than %s, got %s', p_path, p_schema ->> 'exclusiveMaximum', v_num);
    end if;
  elsif v_type = 'array' then
    if jsonb_typeof(p_schema -> 'minItems') = 'number' and jsonb_array_length(p_value) < (p_schema ->> 'minItems')::numeric then
      return format('%s must have at least %s items, got %s', p_path, p_schema ->> 'minItems', jsonb_array_length(p_value));
    end if;
    if jsonb_typeof(p_schema -> 'maxItems') = 'number' and jsonb_array_length(p_value) > (p_schema ->> 'maxItems')::numeric then
      return format('%s must have at most %s items, got %s', p_path, p_schema ->> 'maxItems', jsonb_array_length(p_value));
    end if;
    if jsonb_typeof(p_schema -> 'items') in ('object', 'boolean') then
      for v_i in 0 .. jsonb_array_length(p_value) - 1 loop
        v_problem := runproof_private.json_schema_problem(p_schema -> 'items', p_value -> v_i, format('%s[%s]', p_path, v_i), v_root, p_depth + 1);
        if v_problem is not null then
          return v_problem;
        end if;
      end loop;
    end if;
  elsif v_type = 'object' then
    if jsonb_typeof(p_schema -> 'required') = 'array' then
      for v_key in select jsonb_array_elements_text(p_schema -> 'required') loop
        if not p_value ? v_key then
          return format('%s.%s is required', p_path, v_key);
        end if;
      end loop;
    end if;
    for v_key in select jsonb_object_keys(p_value) order by 1 loop
      if jsonb_typeof(p_schema -> 'propertyNames') = 'object' then
        v_problem := runproof_private.json_schema_problem(p_schema -> 'propertyNames', to_jsonb(v_key),
                                                          format('the key %s of %s', to_jsonb(v_key)::text, p_path), v_root, p_depth + 1);
        if v_problem is not null then
          return v_problem;
        end if;
      end if;
      if jsonb_typeof(p_schema -> 'properties') = 'object' and p_schema -> 'properties' ? v_key then
        v_sub := p_schema -> 'properties' -> v_key;
      elsif p_schema -> 'additionalProperties' = 'false'::jsonb then
        return format('%s has unknown key %s', p_path, quote_literal(v_key))
               || coalesce(format(' (known: %s)', (select string_agg(k, ', ' order by k) from jsonb_object_keys(p_schema -> 'properties') k)), '');
      else
        v_sub := p_schema -> 'additionalProperties';
      end if;
      v_problem := runproof_private.json_schema_problem(v_sub, p_value -> v_key, p_path || '.' || v_key, v_root, p_depth + 1);
      if v_problem is not null then
        return v_problem;
      end if;
    end loop;
  end if;
  return null;
end
$$;
comment on function runproof_private.json_schema_problem(jsonb, jsonb, text, jsonb, integer) is
  'The first way p_value breaks the JSON Schema p_schema (the subset skills register: type, enum, const, anyOf/oneOf, local $ref, properties, required, additionalProperties, propertyNames, items, min/maxItems, min/maxLength, pattern, minimum/maximum, format uri), as a sentence naming the path (p_path, e.g. input.ms); NULL when it conforms. Unknown keywords are not checked.';
--! EndIncluded common/json_schema.sql
--! Included ledger/run_origin.sql
-- Every run says which system created it. origin_system_id is NOT NULL with no default (the
-- table); this guard turns each way of getting it wrong into its own SQLSTATE and a HINT.

create or replace function runproof_private.tg_runs__origin_check() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v text := new.origin_system_id;
  v_hint constant text := 'pass origin_system_id: the identifier of the system creating the run, e.g. ''runproof-cli'', ''graphql'' or your service''s name';
begin
  if v is null then
    raise exception 'null value in column "origin_system_id" of relation "runs" violates not-null constraint'
      using errcode = 'not_null_violation', schema = 'runproof', table = 'runs', column = 'origin_system_id',
            detail = 'origin_system_id has no default on purpose: every run must say which system created it.', hint = v_hint;
  elsif runproof_private.is_blank(v) then
    raise exception 'origin_system_id must not be blank'
      using errcode = 'RPOBL', schema = 'runproof', table = 'runs', column = 'origin_system_id', hint = v_hint;
  elsif length(v) > 128 then
    raise exception 'origin_system_id is % characters long; at most 128 are allowed', length(v)
      using errcode = 'RPOLN', schema = 'runproof', table = 'runs', column = 'origin_system_id',
            hint = 'use a short identifier of the system, not a description';
  elsif v ~ '^[\s\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]|[\s\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]$'
        or runproof_private.has_invisible_chars(v) then
    raise exception 'origin_system_id % has leading or trailing whitespace, or control or invisible characters', runproof_private.visible(v)
      using errcode = 'RPOCH', schema = 'runproof', table = 'runs', column = 'origin_system_id',
            hint = 'trim the value and remove control characters';
  elsif lower(v) = any (runproof_private.reserved_origin_system_ids()) then
    raise exception 'origin_system_id % is reserved and cannot be used for new runs', quote_literal(v)
      using errcode = 'RPORS', schema = 'runproof', table = 'runs', column = 'origin_system_id',
            detail = 'reserved values: ' || array_to_string(runproof_private.reserved_origin_system_ids(), ', '),
            hint = v_hint;
  end if;
  return new;
end
$$;
comment on function runproof_private.tg_runs__origin_check() is
  'Trigger: rejects a missing, blank, over-long, untrimmed or reserved origin_system_id with a message and a HINT saying what to pass.';

create or replace trigger tg_runs__origin_check before insert on runproof.runs
  for each row execute function runproof_private.tg_runs__origin_check();
-- ENABLE ALWAYS: session_replication_role = replica does not switch the guard off.
alter table runproof.runs enable always trigger tg_runs__origin_check;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('runs', 'tg_runs__origin_check', 'INSERT with a NULL (23502), blank (RPOBL), over 128 characters (RPOLN), white space at either end (ASCII or Unicode), control or invisible characters (RPOCH) or reserved (RPORS) origin_system_id', 'INSERT with a real system identifier')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
--! EndIncluded ledger/run_origin.sql
--! Included ledger/plan.sql
-- A run's plan is checked when it is stored, in SQL, whoever stores it: its shape and size, that
-- it names only registered, enabled skills, that each step's input fits its skill's registered
-- input schema, and that it holds only numbers a JavaScript number holds exactly (what the worker
-- runs is what was recorded). Once stored it never changes. A run cannot start without a valid
-- plan (the table's runs_plan_before_start).

create or replace function runproof_private.inexact_number(p jsonb, p_path text default '') returns text
  language plpgsql immutable parallel safe
  set search_path = pg_catalog
  -- float8 to text is then the shortest text that reads back as the same double.
  set extra_float_digits = 1
  as $$
declare
  v_n numeric;
  v_key text;
  v_value jsonb;
  v_i integer := 0;
  v_found text;
begin
  case jsonb_typeof(p)
    when 'number' then
      v_n := (p #>> '{}')::numeric;
      -- Outside the doubles' range (or below the smallest one), no double holds the value; inside
      -- it, the value must read back unchanged from the nearest double.
      if v_n <> 0 and (abs(v_n) < 4.9406564584124654e-324 or abs(v_n) > 1.7976931348623157e308
                       or v_n <> (v_n::float8)::text::numeric) then
        return coalesce(nullif(p_path, ''), '(the plan)') || ' = '
          || case when length(p #>> '{}') > 40 then left(p #>> '{}', 24) || format('... (%s characters)', length(p #>> '{}'))
                  else p #>> '{}' end;
      end if;
    when 'object' then
      for v_key, v_value in select e.key, e.value from jsonb_each(p) e loop
        v_found := runproof_private.inexact_number(v_value, p_path || '.' || v_key);
        if v_found is not null then
          return v_found;
        end if;
      end loop;
    when 'array' then
      for v_value in select e.value from jsonb_array_elements(p) e loop
        v_found := runproof_private.inexact_number(v_value, p_path || '[' || v_i || ']');
        if v_found is not null then
          return v_found;
        end if;
        v_i := v_i + 1;
      end loop;
    else
      null;
  end case;
  return null;
end
$$;
comment on function runproof_private.inexact_number(jsonb, text) is
  'The first number in a JSON value (as "path = number") that no IEEE 754 double holds exactly, or NULL. The worker and its skills run on JavaScript numbers: such a number would run as another value than the one recorded.';

create or replace function runproof_private.validate_plan(p_plan jsonb) returns void
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_step jsonb;
  v_i integer := 0;
  v_skill text;
  v_key text;
  v_schema jsonb;
  v_problem text;
begin
  if p_plan is null then
    return;
  end if;
  if jsonb_typeof(p_plan) <> 'object' then
    raise exception 'plan must be a JSON object, got %', jsonb_typeof(p_plan)
      using errcode = 'RPPLN', hint = 'pass {"version": 1, "steps": [{"skill": "...", "input": {...}}]}';
  end if;
  if octet_length(p_plan::text) > 1048576 then
    raise exception 'plan is % bytes; at most 1 MiB is allowed', octet_length(p_plan::text)
      using errcode = 'RPPLN', hint = 'keep large data out of the plan: have a step fetch it';
  end if;
  for v_key in select jsonb_object_keys(p_plan) loop
    if v_key not in ('version', 'planner', 'steps', 'notes') then
      raise exception 'plan has unknown key %', quote_literal(v_key)
        using errcode = 'RPPLN', hint = 'a plan has the keys version, planner, steps and notes';
    end if;
  end loop;
  if p_plan -> 'version' is distinct from '1'::jsonb then
    raise exception 'plan version must be 1'
      using errcode = 'RPPLN', hint = 'set "version": 1';
  end if;
  if p_plan ? 'planner' and jsonb_typeof(p_plan -> 'planner') <> 'string' then
    raise exception 'plan planner must be a string' using errcode = 'RPPLN', hint = 'name the planner, e.g. "builtin"';
  end if;
  if jsonb_typeof(p_plan -> 'steps') is distinct from 'array' or jsonb_array_length(p_plan -> 'steps') = 0 then
    raise exception 'plan must have a non-empty "steps" array'
      using errcode = 'RPPLN', hint = 'add at least one step: {"skill": "...", "input": {...}}';
  end if;
  if jsonb_array_length(p_plan -> 'steps') > 1000 then
    raise exception 'plan has % steps; at most 1000 are allowed', jsonb_array_length(p_plan -> 'steps')
      using errcode = 'RPPLN', hint = 'split the work into several runs';
  end if;
  for v_step in select value from jsonb_array_elements(p_plan -> 'steps') loop
    if jsonb_typeof(v_step) <> 'object' then
      raise exception 'plan step % must be an object', v_i
        using errcode = 'RPPLN', hint = 'each step is {"skill": "...", "input": {...}}';
    end if;
    for v_key in select jsonb_object_keys(v_step) loop
      if v_key not in ('skill', 'input', 'title', 'timeout_ms') then
        raise exception 'plan step % has unknown key %', v_i, quote_literal(v_key)
          using errcode = 'RPPLN', hint = 'a step has the keys skill, input, title and timeout_ms';
      end if;
    end loop;
    if jsonb_typeof(v_step -> 'skill') is distinct from 'string' then
      raise exception 'plan step % has no skill name', v_i
        using errcode = 'RPPLN', hint = 'set "skill" to a registered skill (select name from runproof.skills)';
    end if;
    v_skill := v_step ->> 'skill';
    if not exists (select 1 from runproof.skills s where s.name = v_skill and s.enabled) then
      raise exception 'plan step % names unknown skill %', v_i, quote_literal(v_skill)
        using errcode = 'RPSKL',
              detail = 'registered skills: ' || coalesce((select string_agg(name, ', ' order by name) from runproof.skills where enabled), '(none)'),
              hint = 'use a registered skill; a worker registers its skills in runproof.skills when it starts';
    end if;
    if v_step ? 'input' and jsonb_typeof(v_step -> 'input') <> 'object' then
      raise exception 'plan step % input must be an object', v_i
        using errcode = 'RPPLN', hint = 'pass the skill''s arguments as a JSON object';
    end if;
    -- Deeper input passes the jsonb parser but not the worker, which must serialise it again to
    -- record the step (found by the bad-input catalogue: the attempt failed and was retried forever).
    if v_step ? 'input' and jsonb_path_exists(v_step -> 'input', 'strict $.**{65}') then
      raise exception 'plan step % input is nested more than 64 levels deep', v_i
        using errcode = 'RPPLN', hint = 'flatten the input: at most 64 levels of objects and arrays';
    end if;
    if v_step ? 'timeout_ms' and (jsonb_typeof(v_step -> 'timeout_ms') <> 'number'
        or (v_step ->> 'timeout_ms')::numeric not between 1 and 3600000) then
      raise exception 'plan step % timeout_ms must be a number of milliseconds from 1 to 3600000', v_i
        using errcode = 'RPPLN', hint = 'omit timeout_ms to use the skill''s default';
    end if;
    -- The input the worker would pass the skill ({} when the step has none), against the schema
    -- the worker registered for it: a wait of "abc" ms is refused now, not when the run reaches it.
    select s.input_schema into v_schema from runproof.skills s where s.name = v_skill;
    v_problem := runproof_private.json_schema_problem(v_schema, coalesce(v_step -> 'input', '{}'::jsonb), 'input');
    if v_problem is not null then
      raise exception 'plan step % (%) %', v_i, v_skill, v_problem
        using errcode = 'RPPLN',
              hint = 'give the step the input its skill expects (select input_schema from runproof.skills where name = ' || quote_literal(v_skill) || ')';
    end if;
    v_i := v_i + 1;
  end loop;
  v_key := runproof_private.inexact_number(p_plan, 'plan');
  if v_key is not null then
    raise exception 'plan number % cannot be held exactly by a 64-bit float, so the skill would receive another number than the one recorded', v_key
      using errcode = 'RPPLN', hint = 'pass such numbers as strings, or round them to a value a double holds';
  end if;
end
$$;
comment on function runproof_private.validate_plan(jsonb) is
  'Raises RPPLN (malformed plan, including step input nested more than 64 levels deep or not fitting its skill''s input_schema, or a number no 64-bit float holds exactly) or RPSKL (unknown skill) unless the plan is valid and names only registered, enabled skills.';

create or replace function runproof_private.tg_runs__plan_check() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_key text;
begin
  if tg_op = 'UPDATE' then
    v_key := format('tenant_id=%s, id=%s', old.tenant_id, old.id);
    if old.plan is not null then
      if new.plan is distinct from old.plan then
        perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'changes the stored plan',
          'a stored plan never changes; enqueue a new run with the new plan');
      end if;
      return new;
    end if;
    if new.plan is not null and old.status <> 'pending' then
      perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'stores a plan after planning',
        'a plan can only be stored while the run is pending');
    end if;
  end if;
  if new.plan is not null then
    perform runproof_private.validate_plan(new.plan);
    new.planned_at := coalesce(new.planned_at, now());
  end if;
  return new;
end
$$;
comment on function runproof_private.tg_runs__plan_check() is
  'Trigger: validates a plan when it is stored (shape, size, registered skills) and stamps planned_at; a stored plan never changes, and none is stored after planning. Fires for INSERT and for every UPDATE that sets the plan.';

create or replace trigger tg_runs__plan_check before insert or update of plan on runproof.runs
  for each row execute function runproof_private.tg_runs__plan_check();
alter table runproof.runs enable always trigger tg_runs__plan_check;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('runs', 'tg_runs__plan_check', 'storing a malformed plan (RPPLN) or one naming an unregistered skill (RPSKL); changing a stored plan, or storing one after planning (RPIMM)', 'storing a valid plan once, while the run is pending')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
--! EndIncluded ledger/plan.sql
--! Included api/tenants.sql
-- Tenants: created by the owner (CLI) with a finite daily budget; a request sees only its own.

create or replace function runproof_private.create_tenant(p_name text, p_daily_budget_cents numeric default 10000)
  returns runproof.tenants
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v runproof.tenants;
begin
  if runproof_private.is_blank(p_name) then
    raise exception 'tenant name must not be blank' using errcode = 'RPVAL', hint = 'pass a name, e.g. ''acme''';
  end if;
  if length(p_name) > 200 then
    raise exception 'tenant name is % characters long; at most 200 are allowed', length(p_name) using errcode = 'RPVAL', hint = 'use a shorter name';
  end if;
  if runproof_private.has_invisible_chars(p_name) then
    raise exception 'tenant name % contains control, invisible or bidirectional formatting characters', runproof_private.visible(p_name)
      using errcode = 'RPVAL', hint = 'use a name of visible characters only (no control characters, zero-width characters or bidi overrides)';
  end if;
  -- 'NaN' sorts above every number, so "< 0" alone let it through (and the policy never denied).
  if p_daily_budget_cents is null or p_daily_budget_cents = 'NaN'::numeric or p_daily_budget_cents < 0
     or p_daily_budget_cents >= 10000000000 then
    raise exception 'daily budget must be a number of cents from 0 to 9999999999.9999, got %', coalesce(p_daily_budget_cents::text, 'NULL')
      using errcode = 'RPVAL', hint = 'pass a budget in cents, e.g. 10000 for $100 a day';
  end if;
  insert into runproof.tenants (name, daily_budget_cents) values (btrim(p_name), p_daily_budget_cents) returning * into v;
  return v;
exception when unique_violation then
  raise exception 'a tenant named % already exists', quote_literal(btrim(p_name)) using errcode = 'RPVAL', hint = 'pick another name, or use the existing tenant (runproof tenant list)';
end
$$;
comment on function runproof_private.create_tenant(text, numeric) is 'Creates a tenant with a daily budget in cents (a finite number from 0 to 9999999999.9999).';

create or replace function runproof.current_tenant() returns runproof.tenants
  language sql stable
  set search_path = pg_catalog
  as $$ select t from runproof.tenants t where t.id = runproof_private.current_tenant_id() $$;
comment on function runproof.current_tenant() is 'The tenant of the API key making the request.';
--! EndIncluded api/tenants.sql
--! Included api/agents.sql
-- Agents: created for the request's tenant, with an optional skill allow-list of registered skills.
-- Each limit of the table is checked here first, so every caller gets the limit in words (RPVAL
-- with a HINT), not the name of the constraint that would have caught it.

create or replace function runproof.create_agent(name text, description text default '', allowed_skills text[] default null, tenant_id uuid default null)
  returns runproof.agents
  language plpgsql volatile security definer
  set search_path = pg_catalog
  as $$
#variable_conflict use_column
declare
  v_tenant uuid := runproof_private.request_tenant(create_agent.tenant_id);
  v runproof.agents;
  v_unknown text;
begin
  if runproof_private.is_blank(create_agent.name) then
    raise exception 'agent name must not be blank' using errcode = 'RPVAL', hint = 'pass a name, e.g. ''researcher''';
  end if;
  if length(create_agent.name) > 200 then
    raise exception 'agent name is % characters long; at most 200 are allowed', length(create_agent.name) using errcode = 'RPVAL', hint = 'use a shorter name';
  end if;
  if runproof_private.has_invisible_chars(create_agent.name) then
    raise exception 'agent name % contains control, invisible or bidirectional formatting characters', runproof_private.visible(create_agent.name)
      using errcode = 'RPVAL', hint = 'use a name of visible characters only (no control characters, zero-width characters or bidi overrides)';
  end if;
  if length(coalesce(create_agent.description, '')) > 2000 then
    raise exception 'agent description is % characters long; at most 2000 are allowed', length(create_agent.description)
      using errcode = 'RPVAL', hint = 'shorten the description to 2000 characters';
  end if;
  if create_agent.allowed_skills is not null then
    if array_position(create_agent.allowed_skills, null) is not null then
      raise exception 'allowed_skills must not contain null (element % is null)', array_position(create_agent.allowed_skills, null)
        using errcode = 'RPVAL', hint = 'list skill names only, e.g. {noop,http_call}; pass null (not [null]) to allow every skill';
    end if;
    if cardinality(create_agent.allowed_skills) > 100 then
      raise exception 'allowed_skills lists % skills; at most 100 are allowed', cardinality(create_agent.allowed_skills)
        using errcode = 'RPVAL', hint = 'list at most 100 skills, or pass null to allow every registered skill';
    end if;
  end if;
  if not exists (select 1 from runproof.tenants t where t.id = v_tenant) then
    raise exception 'tenant % not found', v_tenant using errcode = 'RPNFD', hint = 'create the tenant first (runproof tenant create)';
  end if;
  select string_agg(s, ', ') into v_unknown from unnest(create_agent.allowed_skills) s
   where not exists (select 1 from runproof.skills k where k.name = s);
  if v_unknown is not null then
    raise exception 'allowed_skills names unknown skills: %', v_unknown using errcode = 'RPSKL', hint = 'list skills with runproof skills list';
  end if;
  insert into runproof.agents (tenant_id, name, description, allowed_skills)
  values (v_tenant, btrim(create_agent.name), coalesce(create_agent.description, ''), create_agent.allowed_skills)
  returning * into v;
  return v;
exception when unique_violation then
  raise exception 'an agent named % already exists for this tenant', quote_literal(btrim(create_agent.name)) using errcode = 'RPVAL', hint = 'pick another name';
end
$$;
comment on function runproof.create_agent(text, text, text[], uuid) is
  'Creates an agent for the request''s tenant (or tenant_id from SQL). allowed_skills, if given, limits the skills its runs may call.';
--! EndIncluded api/agents.sql
--! Included api/api_keys.sql
-- API keys: only the SHA-256 of a key is stored, the key is shown once; a key may carry an
-- expiry; runproof_authenticator may only map a key to its tenant (authenticate), never read the
-- table. Revoking or deleting a key (or its tenant) is announced on channel runproof:api_keys,
-- so a GraphQL server ends the key's open subscriptions at once.

create or replace function runproof_private.create_api_key(p_tenant_id uuid, p_label text default '', p_expires_at timestamptz default null)
  returns table (key_id uuid, api_key text, key_prefix text, expires_at timestamptz)
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_prefix text := 'rp_' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 8);
  -- Two v4 UUIDs: 244 random bits from the server's strong random source.
  v_key text := v_prefix || '_' || replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
  v_id uuid;
begin
  if not exists (select 1 from runproof.tenants where id = p_tenant_id) then
    raise exception 'tenant % not found', p_tenant_id using errcode = 'RPNFD', hint = 'create the tenant first (runproof tenant create)';
  end if;
  if length(coalesce(p_label, '')) > 200 then
    raise exception 'API key label is % characters long; at most 200 are allowed', length(p_label)
      using errcode = 'RPVAL', hint = 'use a shorter label';
  end if;
  if p_expires_at is not null and p_expires_at <= now() then
    raise exception 'API key expiry % is not in the future', p_expires_at
      using errcode = 'RPVAL', hint = 'pass a time after now, e.g. now() + interval ''30 days'' (runproof api-key create --expires-in 30d)';
  end if;
  insert into runproof_private.api_keys (tenant_id, key_hash, key_prefix, label, expires_at)
  values (p_tenant_id, sha256(convert_to(v_key, 'UTF8')), v_prefix, coalesce(p_label, ''), p_expires_at)
  returning id into v_id;
  key_id := v_id; api_key := v_key; key_prefix := v_prefix; expires_at := p_expires_at;
  return next;
end
$$;
comment on function runproof_private.create_api_key(uuid, text, timestamptz) is
  'Creates an API key for a tenant and returns it once; only its SHA-256 is stored. With p_expires_at, the key authenticates nothing from then on (RPKEX).';

create or replace function runproof_private.revoke_api_key(p_tenant_id uuid, p_key_id uuid) returns void
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  update runproof_private.api_keys set revoked_at = coalesce(revoked_at, now())
   where tenant_id = p_tenant_id and id = p_key_id;
  if not found then
    raise exception 'API key % of tenant % not found', p_key_id, p_tenant_id using errcode = 'RPNFD', hint = 'list keys with runproof api-key list';
  end if;
end
$$;
comment on function runproof_private.revoke_api_key(uuid, uuid) is 'Revokes an API key; it authenticates nothing from then on, and servers end its open subscriptions (NOTIFY runproof:api_keys).';

create or replace function runproof_private.authenticate(p_api_key text) returns uuid
  language plpgsql stable security definer
  set search_path = pg_catalog
  as $$
declare
  v record;
begin
  select k.tenant_id, k.revoked_at, k.expires_at into v from runproof_private.api_keys k
   where k.key_hash = sha256(convert_to(coalesce(p_api_key, ''), 'UTF8'));
  if not found then
    raise exception 'invalid API key' using errcode = '28000', hint = 'send Authorization: Bearer <api key>; create a key with runproof api-key create';
  end if;
  if v.revoked_at is not null then
    raise exception 'API key is revoked' using errcode = '28000', hint = 'create a new key with runproof api-key create';
  end if;
  if v.expires_at is not null and v.expires_at <= now() then
    raise exception 'API key expired at %', to_char(v.expires_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
      using errcode = 'RPKEX', hint = 'create a new key with runproof api-key create (--expires-in for another key that expires)';
  end if;
  return v.tenant_id;
end
$$;
comment on function runproof_private.authenticate(text) is
  'Maps an API key to its tenant by the key''s hash; raises 28000 for an unknown or revoked key, RPKEX for an expired one.';

create or replace function runproof_private.tg_api_keys__notify() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  -- Ids only: a key's hash is never sent anywhere.
  if tg_op = 'DELETE' then
    perform pg_notify('runproof:api_keys', json_build_object('event', 'deleted', 'tenant_id', old.tenant_id, 'key_id', old.id)::text);
  elsif new.revoked_at is not null and old.revoked_at is null then
    perform pg_notify('runproof:api_keys', json_build_object('event', 'revoked', 'tenant_id', new.tenant_id, 'key_id', new.id)::text);
  end if;
  return null;
end
$$;
comment on function runproof_private.tg_api_keys__notify() is
  'Trigger: announces a revoked or deleted API key (also when its tenant is deleted) on channel runproof:api_keys, with the tenant and key ids, for servers to end its subscriptions.';

create or replace trigger tg_api_keys__notify after update of revoked_at or delete on runproof_private.api_keys
  for each row execute function runproof_private.tg_api_keys__notify();
--! EndIncluded api/api_keys.sql
--! Included execution/cancel.sql
-- Cancellation: a run that is not executing is cancelled at once; an executing one is asked to
-- stop, and its worker stops it between steps.

create or replace function runproof.cancel_run(run_id uuid, reason text default 'cancelled by request', tenant_id uuid default null)
  returns runproof.runs
  language plpgsql volatile security definer
  set search_path = pg_catalog
  as $$
#variable_conflict use_column
declare
  v_tenant uuid := runproof_private.request_tenant(cancel_run.tenant_id);
  v runproof.runs;
begin
  -- The reason becomes the run's error: bounded like the other texts a tenant sends.
  if length(cancel_run.reason) > 2000 then
    raise exception 'cancel reason is % characters long; at most 2000 are allowed', length(cancel_run.reason)
      using errcode = 'RPVAL', hint = 'say briefly why the run is cancelled';
  end if;
  select r.* into v from runproof.runs r where r.tenant_id = v_tenant and r.id = cancel_run.run_id for update;
  if not found then
    raise exception 'run % not found for tenant %', cancel_run.run_id, v_tenant using errcode = 'RPNFD', hint = 'check the run id (runproof runs list)';
  end if;
  if runproof_private.is_terminal_status(v.status) then
    raise exception 'run % is already %', v.id, v.status using errcode = 'RPSTS', hint = 'only a run that has not finished can be cancelled';
  end if;
  if v.status = 'running' then
    insert into runproof_private.cancel_requests (tenant_id, run_id, reason)
    values (v_tenant, v.id, coalesce(cancel_run.reason, 'cancelled by request'))
    on conflict do nothing;
    perform pg_notify('runproof:run:' || v.id, json_build_object('event', 'cancel_requested', 'run_id', v.id)::text);
    return v;
  end if;
  update runproof.runs r set status = 'cancelled', error = coalesce(cancel_run.reason, 'cancelled by request')
   where r.tenant_id = v_tenant and r.id = v.id returning * into v;
  delete from runproof_private.cancel_requests c where c.tenant_id = v_tenant and c.run_id = v.id;
  perform graphile_worker.remove_job('plan:' || v.id);
  perform graphile_worker.remove_job('exec:' || v.id);
  return v;
end
$$;
comment on function runproof.cancel_run(uuid, text, uuid) is
  'Cancels a run: at once if it is not executing, else the worker stops it between steps (its trace sealed as aborted).';

create or replace function runproof_private.cancel_requested(p_tenant_id uuid, p_run_id uuid) returns text
  language sql stable
  set search_path = pg_catalog
  as $$ select c.reason from runproof_private.cancel_requests c where c.tenant_id = p_tenant_id and c.run_id = p_run_id $$;
comment on function runproof_private.cancel_requested(uuid, uuid) is 'The reason a running run was asked to stop, or NULL.';
--! EndIncluded execution/cancel.sql

--! Included api/access.sql
-- Who may see and do what. Tenants (runproof_tenant, the role of every GraphQL request) read their
-- own rows through row level security and write only through SQL functions; runproof_authenticator
-- (PostGraphile's login) may only look up an API key. Everything else belongs to the owner.
-- This file states every privilege: it first revokes all, so what is not granted here is not granted.

revoke all on all functions in schema runproof, runproof_private from public, runproof_tenant, runproof_authenticator;
revoke all on all tables in schema runproof, runproof_private from public, runproof_tenant, runproof_authenticator;
revoke all on schema runproof, runproof_private from public, runproof_tenant, runproof_authenticator;

-- Functions created later are not executable by PUBLIC either (Postgres's default is that they are).
alter default privileges revoke execute on functions from public;

grant usage on schema runproof to runproof_tenant;
-- runproof_authenticator is NOINHERIT, so runproof_tenant's USAGE does not reach it; it needs its own
-- to call runproof_private.authenticate (its only grant in there).
grant usage on schema runproof_private to runproof_tenant, runproof_authenticator;

--------------------------------------------------------------------------------
-- Row level security: every exposed table, a tenant sees its own rows only
--------------------------------------------------------------------------------

alter table runproof.tenants enable row level security;
alter table runproof.agents enable row level security;
alter table runproof.skills enable row level security;
alter table runproof.runs enable row level security;
alter table runproof.traces enable row level security;
alter table runproof.policy_decisions enable row level security;
alter table runproof.trace_steps enable row level security;
alter table runproof.incidents enable row level security;
alter table runproof.agent_memory enable row level security;
alter table runproof.step_payloads enable row level security;
alter table runproof.payload_erasures enable row level security;
alter table runproof.payload_erasure_steps enable row level security;
alter table runproof_private.api_keys enable row level security;

drop policy if exists select_own on runproof.tenants;
create policy select_own on runproof.tenants for select to runproof_tenant using (id = (select runproof_private.current_tenant_id()));
drop policy if exists select_all on runproof.skills;
create policy select_all on runproof.skills for select to runproof_tenant using (true);
drop policy if exists select_own on runproof.agents;
create policy select_own on runproof.agents for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));
drop policy if exists select_own on runproof.runs;
create policy select_own on runproof.runs for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));
drop policy if exists select_own on runproof.traces;
create policy select_own on runproof.traces for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));
drop policy if exists select_own on runproof.policy_decisions;
create policy select_own on runproof.policy_decisions for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));
drop policy if exists select_own on runproof.trace_steps;
create policy select_own on runproof.trace_steps for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));
drop policy if exists select_own on runproof.incidents;
create policy select_own on runproof.incidents for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));
drop policy if exists select_own on runproof.agent_memory;
create policy select_own on runproof.agent_memory for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));
drop policy if exists select_own on runproof.step_payloads;
create policy select_own on runproof.step_payloads for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));
drop policy if exists select_own on runproof.payload_erasures;
create policy select_own on runproof.payload_erasures for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));
drop policy if exists select_own on runproof.payload_erasure_steps;
create policy select_own on runproof.payload_erasure_steps for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));

--------------------------------------------------------------------------------
-- Tenants read; every write goes through the SQL functions below
--------------------------------------------------------------------------------

grant select on runproof.tenants, runproof.agents, runproof.skills, runproof.runs, runproof.traces,
  runproof.policy_decisions, runproof.trace_steps, runproof.incidents, runproof.agent_memory,
  runproof.step_payloads, runproof.payload_erasures, runproof.payload_erasure_steps to runproof_tenant;

-- The API: what a GraphQL request may call.
grant execute on function
  runproof.current_tenant(),
  runproof.create_agent(text, text, text[], uuid),
  runproof.enqueue_run(uuid, uuid, text, text, jsonb, text, integer),
  runproof.cancel_run(uuid, text, uuid),
  runproof.archive_trace(uuid, uuid),
  runproof.erase_payloads(uuid, interval, text, uuid),
  runproof.verify_trace(uuid),
  runproof.run_proof(uuid, uuid),
  runproof.runs_proof(runproof.runs),
  runproof.traces_proof(runproof.traces),
  runproof.runs_root_hash(runproof.runs),
  runproof.traces_root_hash(runproof.traces),
  runproof.trace_steps_prev_hash(runproof.trace_steps),
  runproof.trace_steps_step_hash(runproof.trace_steps),
  runproof.trace_steps_input(runproof.trace_steps),
  runproof.trace_steps_output(runproof.trace_steps),
  runproof.trace_steps_error(runproof.trace_steps),
  runproof.trace_steps_erasure(runproof.trace_steps),
  runproof.runs_payload_erasures(runproof.runs),
  runproof.runs_plan_step_count(runproof.runs),
  runproof.runs_is_finished(runproof.runs)
  to runproof_tenant;

-- What those call without SECURITY DEFINER: the request's tenant, hashing and verification.
grant execute on function
  runproof_private.current_tenant_id(),
  runproof_private.hex(bytea),
  runproof_private.is_terminal_status(text),
  runproof_private.genesis_hash(uuid, uuid, uuid),
  runproof_private.step_canonical(runproof.trace_steps),
  runproof_private.step_hash(bytea, bytea),
  runproof_private.decision_canonical(runproof.policy_decisions),
  runproof_private.payload_commitment(text, bytea, text),
  runproof_private.trace_canonical(runproof.traces),
  runproof_private.incident_canonical(runproof.incidents),
  runproof_private.run_canonical(runproof.runs),
  runproof_private.run_seal_canonical(runproof.runs),
  runproof_private.run_root_hash(runproof.runs),
  runproof_private.step_fault_order(),
  runproof_private.step_faults(uuid, uuid, bytea, integer, integer),
  runproof_private.step_faults_parallel(uuid, uuid, bytea, integer),
  runproof_private.seal_difference(bytea, bytea, text[]),
  runproof_private.trace_check(runproof.traces, integer),
  runproof_private.verify_trace_row(runproof.traces),
  runproof_private.run_proof_chain(uuid, uuid),
  runproof_private.guard_status(timestamptz, timestamptz)
  to runproof_tenant;

-- PostGraphile's login maps an API key to its tenant, and nothing else.
grant execute on function runproof_private.authenticate(text) to runproof_authenticator;
--! EndIncluded api/access.sql

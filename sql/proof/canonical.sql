-- The bytes that are hashed: the genesis of a trace, the canonical content of a step and of a
-- run, and how they chain into a step_hash, a trace root and a run root. docs/proof-format.md is
-- the normative description; the offline verifier (src/lib/offline-verify.ts) recomputes these.

create or replace function runproof_private.genesis_hash(p_tenant_id uuid, p_run_id uuid, p_trace_id uuid) returns bytea
  language sql immutable parallel safe
  as $$ select sha256(convert_to('runproof.genesis/1|' || p_tenant_id || '|' || p_run_id || '|' || p_trace_id, 'UTF8')) $$;
comment on function runproof_private.genesis_hash(uuid, uuid, uuid) is
  'The prev_hash of a trace''s first step: binds the format version, tenant, run and trace, so steps cannot move between traces.';

-- Written with format() rather than jsonb_build_array(...)::text, byte for byte the same:
-- jsonb_build_array(...)::text converts every column into a jsonb value, assembles a jsonb
-- array, then prints it again. format() writes the same text directly: the uuids, integers and
-- jsonb columns with their own output functions (jsonb's text output is what jsonb_build_array
-- embedded), every text, timestamp and numeric through to_json(), which escapes and formats
-- exactly as jsonb does (same escape_json, same JsonEncodeDateTime, NaN/Infinity quoted the same
-- way). A column that is NULL (impossible under the NOT NULL constraints, possible after a
-- superuser drops one) takes the old path, so the bytes are identical for every row.
-- Checked on 50,000 adversarial rows (control characters, quotes, backslashes, U+2028, astral
-- characters, nested jsonb with unsorted keys, 1e10 and -0, NaN, +/-infinity and BC timestamps,
-- NULLs) by bench/proposed-check.sql, in the history before the baseline.
create or replace function runproof_private.step_canonical(s runproof.trace_steps) returns bytea
  language sql stable parallel safe
  as $$
    select convert_to(case
      when num_nulls(s.tenant_id, s.run_id, s.trace_id, s.step_index, s.plan_step, s.skill, s.status, s.policy_decision,
                     s.input, s.started_at, s.finished_at, s.duration_ms, s.cost_cents, s.source, s.level, s.recorded_at) = 0
      then format('["runproof.step/1", "%s", "%s", "%s", %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s]',
        s.tenant_id, s.run_id, s.trace_id, s.step_index, s.plan_step,
        to_json(s.skill), to_json(s.status), to_json(s.policy_decision),
        s.input, coalesce(s.output::text, 'null'), coalesce(to_json(s.error)::text, 'null'),
        to_json(s.started_at at time zone 'UTC'), to_json(s.finished_at at time zone 'UTC'),
        to_json(s.duration_ms), to_json(s.cost_cents), to_json(s.source), to_json(s.level),
        to_json(s.recorded_at at time zone 'UTC'))
      else jsonb_build_array(
        'runproof.step/1', s.tenant_id, s.run_id, s.trace_id, s.step_index, s.plan_step,
        s.skill, s.status, s.policy_decision, s.input, s.output, s.error,
        s.started_at at time zone 'UTC', s.finished_at at time zone 'UTC',
        s.duration_ms, s.cost_cents, s.source, s.level, s.recorded_at at time zone 'UTC')::text
      end, 'UTF8')
  $$;
comment on function runproof_private.step_canonical(runproof.trace_steps) is
  'The canonical bytes of a step''s content: the UTF-8 text of a fixed-order JSON array (Postgres jsonb text; timestamps in UTC as 2026-01-02T03:04:05.123456 with trailing zeros trimmed). These exact bytes are exported in proof bundles.';

create or replace function runproof_private.step_hash(p_prev_hash bytea, p_canonical bytea) returns bytea
  language sql immutable strict parallel safe
  as $$ select sha256(p_prev_hash || sha256(p_canonical)) $$;
comment on function runproof_private.step_hash(bytea, bytea) is 'step_hash = sha256(prev_hash || sha256(canonical content)).';

create or replace function runproof_private.run_canonical(r runproof.runs) returns bytea
  language sql stable parallel safe
  as $$
    select convert_to(jsonb_build_array(
      'runproof.run/1', r.tenant_id, r.id, r.agent_id, r.goal, r.origin_system_id, r.plan,
      r.idempotency_key, r.max_attempts, r.created_at at time zone 'UTC'
    )::text, 'UTF8')
  $$;
comment on function runproof_private.run_canonical(runproof.runs) is
  'The canonical bytes of a run''s own content: the UTF-8 text of a fixed-order JSON array (docs/proof-format.md). Its hash is part of the run root.';

create or replace function runproof_private.run_root_hash(p_tenant_id uuid, p_run_id uuid, p_trace_roots bytea[]) returns bytea
  language sql stable parallel safe
  set search_path = pg_catalog
  as $$
    select sha256(
      sha256(convert_to('runproof.run/1|' || p_tenant_id || '|' || p_run_id, 'UTF8'))
      || coalesce((select sha256(runproof_private.run_canonical(r)) from runproof.runs r
                    where r.tenant_id = p_tenant_id and r.id = p_run_id), sha256(''::bytea))
      || coalesce((select string_agg(x, ''::bytea order by o) from unnest(p_trace_roots) with ordinality u(x, o)), ''::bytea))
  $$;
comment on function runproof_private.run_root_hash(uuid, uuid, bytea[]) is
  'A run''s root: sha256(sha256("runproof.run/1|tenant|run") || sha256(run_canonical) || root_1 || root_2 || ...), trace roots in attempt order. Reads the run row (its content is part of the root).';

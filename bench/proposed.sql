-- STATUS: P1-P3 below are in migration 000008-faster-verify-and-execute (commit 08ee9c4), with the
-- tenant-isolation cases; on a database migrated to 000008 this file redefines nothing new, and
-- `npm run bench -- --ab` compares identical definitions. Kept as the record of what was measured
-- (bench/results-ab.md) and as the place for the next proposals.
--
-- Proposed changes from `npm run bench` (see bench/FINDINGS.md for what each one fixes and its
-- measured gain). Not a migration: the lead folds what is kept into one. Idempotent (create or
-- replace), and every replaced function keeps its signature, so it applies on top of
-- migrations/committed 000001-000007 (npm run bench -- --proposed / --ab / --test-proposed do that).
-- Written against: step_canonical and verify_trace_row of 000001, tg_runs__guard of 000004.
-- Folding it in: P2 adds two functions the tenant role executes (chain_faults, chain_faults_parallel),
-- so test/reliability-tenant-isolation.test.ts needs a case for each in SQL_CASES (both return
-- (0, NULL) for another tenant's trace: row level security); P3 needs PostgreSQL 17+.
-- Checks: bench/proposed-check.sql (byte-identical canonical bytes; same first fault in parallel).
--
--   P1  step_canonical without the jsonb round trip (byte-identical output, ~1.5x faster)
--   P2  verify_trace_row: large traces recompute their hashes in parallel workers
--   P3  tg_runs__guard: no whole-row jsonb diff (plan included) on every update of a run
-- Tried and not proposed (see FINDINGS.md): merging the triggers' look-ups into fewer statements
-- (no faster, or slower), and a statement-level step notification trigger (~6 us less per row in
-- multi-row INSERTs, no measurable change for the single-row INSERTs the worker makes).

--------------------------------------------------------------------------------
-- P1. Canonical bytes without building and re-printing a jsonb value
--------------------------------------------------------------------------------
-- jsonb_build_array(...)::text converts every column into a jsonb value, assembles a jsonb
-- array, then prints it again. format() writes the same text directly: the uuids, integers and
-- jsonb columns with their own output functions (jsonb's text output is what jsonb_build_array
-- embedded), every text, timestamp and numeric through to_json(), which escapes and formats
-- exactly as jsonb does (same escape_json, same JsonEncodeDateTime, NaN/Infinity quoted the same
-- way). A column that is NULL (impossible under the NOT NULL constraints, possible after a
-- superuser drops one) takes the old path, so the bytes are identical for every row.
-- Checked on 50,000 adversarial rows (control characters, quotes, backslashes, U+2028, astral
-- characters, nested jsonb with unsorted keys, 1e10 and -0, NaN, +/-infinity and BC timestamps,
-- NULLs): bench/proposed-check.sql.
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

--------------------------------------------------------------------------------
-- P2. Verification of large traces in parallel workers
--------------------------------------------------------------------------------
-- A SELECT ... INTO in PL/pgSQL runs with a row limit, and Postgres never starts parallel
-- workers for a statement run with a row limit ("Workers Planned: 2, Workers Launched: 0" in
-- auto_explain), so verify_trace_row used one core however large the trace. RETURN QUERY runs
-- without a limit. For a large trace, chain_faults therefore splits the one pass in two:
--   * links and gaps, which need chain order: one ordered pass over the primary key, cheap
--     (no hashing);
--   * every stored step_hash recomputed from its content, which needs no order: a parallel
--     aggregate (min(...) FILTER, not WHERE, so that the planner keeps it an aggregate instead of
--     an ordered LIMIT 1 scan).
-- first_bad is the same as before: a gap row reports its expected index, a link or hash fault
-- its own index, and since indexes are unique and sorted a row's expected index is never larger
-- than its index, so least() over the two passes equals the old min() over one.
-- Small traces (verify_all's typical run) keep the single pass, with its cached plan.
create or replace function runproof_private.chain_faults_parallel(p_tenant_id uuid, p_trace_id uuid, p_genesis bytea)
  returns table (step_count integer, first_bad integer)
  language plpgsql stable
  set search_path = pg_catalog
  -- Only called for large traces, where workers always pay off: do not let stale statistics
  -- (a trace that grew since the last ANALYZE) talk the planner out of them.
  set parallel_setup_cost = 0
  set parallel_tuple_cost = 0
  set min_parallel_table_scan_size = 0
  set min_parallel_index_scan_size = 0
  as $$
begin
  return query execute $q$
    select l.n,
           least(l.bad,
             (select min(st.step_index) filter (
                       where st.step_hash is distinct from runproof_private.step_hash(st.prev_hash, runproof_private.step_canonical(st)))
                from runproof.trace_steps st
               where st.tenant_id = $1 and st.trace_id = $2))
      from (select count(*)::integer as n,
                   min(case when s.step_index <> s.expected_index then s.expected_index
                            when s.prev_hash is distinct from s.expected_prev then s.step_index end) as bad
              from (select st.step_index, (row_number() over w - 1)::integer as expected_index, st.prev_hash,
                           coalesce(lag(st.step_hash) over w, $3) as expected_prev
                      from runproof.trace_steps st
                     where st.tenant_id = $1 and st.trace_id = $2
                    window w as (order by st.step_index)) s) l $q$
    using p_tenant_id, p_trace_id, p_genesis;
end
$$;
comment on function runproof_private.chain_faults_parallel(uuid, uuid, bytea) is
  'chain_faults for large traces: links and gaps in one ordered pass, every hash recomputed by a parallel aggregate.';

create or replace function runproof_private.chain_faults(p_tenant_id uuid, p_trace_id uuid, p_genesis bytea, p_size_hint integer)
  returns table (step_count integer, first_bad integer)
  language plpgsql stable
  set search_path = pg_catalog
  as $$
begin
  if p_size_hint >= 50000 then
    return query select * from runproof_private.chain_faults_parallel(p_tenant_id, p_trace_id, p_genesis);
    return;
  end if;
  -- One set-based pass: every row is checked for its index, its link to the previous stored
  -- step_hash (or the genesis), and its own hash recomputed from its content. Together these
  -- are the whole chain, without trusting any stored hash on its own.
  return query
    with s as (
      select st.step_index,
             (row_number() over w - 1)::integer as expected_index,
             st.prev_hash,
             coalesce(lag(st.step_hash) over w, p_genesis) as expected_prev,
             st.step_hash,
             runproof_private.step_hash(st.prev_hash, runproof_private.step_canonical(st)) as recomputed
        from runproof.trace_steps st
       where st.tenant_id = p_tenant_id and st.trace_id = p_trace_id
      window w as (order by st.step_index)
    ), faults as (
      select s.*,
             case when s.step_index <> s.expected_index then 'gap'
                  when s.prev_hash is distinct from s.expected_prev then 'link'
                  when s.step_hash is distinct from s.recomputed then 'hash'
             end as fault
        from s
    )
    select count(*)::integer,
           min(case when f.fault = 'gap' then f.expected_index when f.fault is not null then f.step_index end)
      from faults f;
end
$$;
comment on function runproof_private.chain_faults(uuid, uuid, bytea, integer) is
  'The chain check of verify_trace_row: how many steps a trace has and its first fault (a gap: the missing index; a broken link or a hash that does not match its content: the step''s index), or NULL. p_size_hint (the last index + 1) picks the parallel plan for large traces.';

--------------------------------------------------------------------------------
-- P2 (cont.). verify_trace_row: as in migration 000001 but for the fault query, now chain_faults
--------------------------------------------------------------------------------
create or replace function runproof_private.verify_trace_row(t runproof.traces) returns runproof.proof
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_genesis bytea := runproof_private.genesis_hash(t.tenant_id, t.run_id, t.id);
  v_count integer;
  v_last_hash bytea;
  v_last_index integer;
  v_bad integer;
  v_result runproof.proof;
begin
  v_result.integrity_model := 'HASH_CHAIN';
  v_result.tenant_id := t.tenant_id;
  v_result.run_id := t.run_id;
  v_result.trace_id := t.id;
  v_result.trace_count := 1;
  v_result.verified_at := clock_timestamp();

  -- The chain head first (it is the root, and its index says how big the trace is), then the
  -- faults: runproof_private.chain_faults checks the same three things as before in one place,
  -- in parallel workers when the trace is large.
  select st.step_index, st.step_hash into v_last_index, v_last_hash from runproof.trace_steps st
   where st.tenant_id = t.tenant_id and st.trace_id = t.id order by st.step_index desc limit 1;
  select f.step_count, f.first_bad into v_count, v_bad
    from runproof_private.chain_faults(t.tenant_id, t.id, v_genesis, coalesce(v_last_index + 1, 0)) f;
  v_result.step_count := v_count;
  v_result.root_hash := runproof_private.hex(coalesce(v_last_hash, v_genesis));

  if v_bad is not null then
    -- Explain the first fault (a second, indexed look at the one or two rows involved).
    declare
      v_row runproof.trace_steps;
      v_prev_hash bytea;
      v_idx integer := v_bad;
    begin
      select * into v_row from runproof.trace_steps where tenant_id = t.tenant_id and trace_id = t.id and step_index = v_idx;
      v_result.first_bad_attempt := t.attempt;
      v_result.first_bad_trace_id := t.id;
      v_result.first_bad_step_index := v_idx;
      v_result.chain_length := v_idx;
      if not found then
        v_result.verification_status := 'BROKEN';
        v_result.reason := format('step %s is missing from the chain (the next stored step is %s)', v_idx,
          (select min(step_index) from runproof.trace_steps where tenant_id = t.tenant_id and trace_id = t.id and step_index > v_idx));
        return v_result;
      end if;
      v_prev_hash := case when v_idx = 0 then v_genesis else
        (select step_hash from runproof.trace_steps where tenant_id = t.tenant_id and trace_id = t.id and step_index = v_idx - 1) end;
      v_result.verification_status := 'TAMPERED';
      if v_row.prev_hash is distinct from v_prev_hash then
        v_result.reason := format('step %s: prev_hash %s does not link to %s', v_idx, runproof_private.hex(v_row.prev_hash),
          case when v_idx = 0 then 'the trace''s genesis hash ' else format('the step_hash of step %s ', v_idx - 1) end
          || runproof_private.hex(v_prev_hash));
      else
        v_result.reason := format('step %s: stored step_hash %s does not match sha256(prev_hash || sha256(content)) = %s; its content or its hash was changed',
          v_idx, runproof_private.hex(v_row.step_hash),
          runproof_private.hex(runproof_private.step_hash(v_row.prev_hash, runproof_private.step_canonical(v_row))));
      end if;
      return v_result;
    end;
  end if;

  v_result.chain_length := v_count;
  if t.status = 'running' then
    if t.step_count is not null or t.root_hash is not null then
      v_result.verification_status := 'TAMPERED';
      v_result.first_bad_attempt := t.attempt;
      v_result.first_bad_trace_id := t.id;
      v_result.reason := 'a running trace carries a seal';
      return v_result;
    end if;
    v_result.verification_status := 'IN_PROGRESS';
    return v_result;
  end if;

  if t.step_count is null or t.root_hash is null then
    v_result.verification_status := 'BROKEN';
    v_result.first_bad_attempt := t.attempt;
    v_result.first_bad_trace_id := t.id;
    v_result.reason := format('trace is %s but has no seal', t.status);
  elsif t.step_count <> v_count then
    v_result.verification_status := 'BROKEN';
    v_result.first_bad_attempt := t.attempt;
    v_result.first_bad_trace_id := t.id;
    v_result.first_bad_step_index := least(t.step_count, v_count);
    v_result.chain_length := least(t.step_count, v_count);
    v_result.reason := case when v_count < t.step_count
      then format('the seal says %s steps but the chain has %s: step %s onwards is missing', t.step_count, v_count, v_count)
      else format('the seal says %s steps but the chain has %s: step %s onwards was added after the seal', t.step_count, v_count, t.step_count) end;
  elsif t.root_hash <> coalesce(v_last_hash, v_genesis) then
    v_result.verification_status := 'TAMPERED';
    v_result.first_bad_attempt := t.attempt;
    v_result.first_bad_trace_id := t.id;
    v_result.reason := format('the sealed root_hash %s does not match the chain''s root %s', runproof_private.hex(t.root_hash), v_result.root_hash);
  else
    v_result.verification_status := 'VERIFIED';
  end if;
  return v_result;
end
$$;
comment on function runproof_private.verify_trace_row(runproof.traces) is 'Verifies one trace row against its steps (the core of verify_trace and run_proof).';

grant execute on function runproof_private.chain_faults(uuid, uuid, bytea, integer),
  runproof_private.chain_faults_parallel(uuid, uuid, bytea) to runproof_tenant;

--------------------------------------------------------------------------------
-- P3. Run guard: no whole-row jsonb diff on every update
--------------------------------------------------------------------------------
-- tg_runs__guard built to_jsonb(old) and to_jsonb(new), plan included, diffed them, and compared
-- the two plans again, on every UPDATE of a run; record_step updates the run once per step, so a
-- run paid O(plan size) per step and O(steps x plan size) in all: ~1.5-5 ms per step for a
-- 1,000-step plan (~45 kB). The checks are the same: the identity columns are compared directly,
-- the plan only when it may have changed, and the jsonb diff is only built for an error message or
-- for a finished run (where it decides whether an update is a no-op). As migration 000004
-- otherwise: same errors, same messages. Needs PostgreSQL 17+ (pg_column_toast_chunk_id).
create or replace function runproof_private.tg_runs__guard() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_changed text[];
  v_key text;
  v_roots bytea[];
  v_open integer;
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
  -- An UPDATE that does not set the plan keeps its stored (TOASTed) value, which has the same TOAST
  -- chunk id in OLD and NEW (PostgreSQL 17+): then the plan cannot have changed, and the O(plan)
  -- jsonb comparison is skipped. A new or small (inline) value has no chunk id and is compared.
  if old.plan is not null
     and not coalesce(pg_column_toast_chunk_id(new.plan) = pg_column_toast_chunk_id(old.plan), false)
     and new.plan is distinct from old.plan then
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'changes the stored plan',
      'a stored plan never changes; enqueue a new run with the new plan');
  end if;
  if old.plan is null and new.plan is not null and old.status <> 'pending' then
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'stores a plan after planning',
      'a plan can only be stored while the run is pending');
  end if;
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
  if new.status = 'succeeded' and old.status <> 'succeeded' then
    if new.next_plan_step <> jsonb_array_length(new.plan -> 'steps') then
      raise exception 'run % cannot succeed: % of % plan steps succeeded', old.id, new.next_plan_step, jsonb_array_length(new.plan -> 'steps')
        using errcode = 'RPSTS', hint = 'a run succeeds when every plan step has a succeeded step';
    end if;
    if (select t.status from runproof.traces t where t.tenant_id = new.tenant_id and t.run_id = new.id
         order by t.attempt desc limit 1) is distinct from 'completed' then
      raise exception 'run % cannot succeed: its last attempt did not complete', old.id
        using errcode = 'RPSTS', hint = 'seal the last trace as completed first';
    end if;
  end if;
  if new.attempts <> old.attempts and not (new.attempts = old.attempts + 1 and new.status = 'running' and old.status <> 'running') then
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'changes attempts',
      'attempts only grows by one, when a new attempt starts (runproof_private.start_attempt)');
  end if;
  if (new.next_plan_step, new.cost_cents) is distinct from (old.next_plan_step, old.cost_cents)
     and (old.status <> 'running' or new.next_plan_step < old.next_plan_step or new.cost_cents < old.cost_cents) then
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'changes progress outside a running attempt or backwards',
      'progress is recorded with its step by runproof_private.record_step');
  end if;
  if old.started_at is not null and new.started_at is distinct from old.started_at
     or old.planned_at is not null and new.planned_at is distinct from old.planned_at then
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'changes started_at or planned_at',
      'timestamps of what happened are set once');
  end if;

  if new.status = 'running' then
    new.started_at := coalesce(new.started_at, now());
  end if;

  -- Entering a final status seals the run: trace_count and root_hash, computed here, never by a client.
  if runproof_private.is_terminal_status(new.status) then
    select count(*) filter (where t.status = 'running'),
           array_agg(t.root_hash order by t.attempt)
      into v_open, v_roots
      from runproof.traces t
     where t.tenant_id = new.tenant_id and t.run_id = new.id;
    if v_open > 0 then
      raise exception 'run % still has a running trace', new.id
        using errcode = 'RPSTS', hint = 'seal the trace first (runproof_private.seal_trace)';
    end if;
    if new.trace_count is not null or new.root_hash is not null then
      perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'supplies trace_count or root_hash',
        'the run seal is computed by the database when the run ends');
    end if;
    new.trace_count := coalesce(cardinality(v_roots), 0);
    new.root_hash := runproof_private.run_root_hash(new.tenant_id, new.id, coalesce(v_roots, '{}'));
    new.finished_at := coalesce(new.finished_at, now());
  elsif new.trace_count is not null or new.root_hash is not null or new.finished_at is not null then
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'sets the seal of an unfinished run',
      'the run seal is computed by the database when the run ends');
  end if;

  new.updated_at := now();
  return new;
end
$$;
comment on function runproof_private.tg_runs__guard() is
  'Trigger: runs are never deleted; identity, goal, origin and a stored plan never change; status follows the state machine; progress only moves forward while running; a final status seals trace_count and root_hash and freezes the run.';


-- Verifying one trace: every step's index, link and hash recomputed from the stored columns in
-- one pass (large traces split over parallel workers), then the seal compared with the chain.

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
    v_result.verification_status := 'NOT_FOUND';
    v_result.trace_id := verify_trace.trace_id;
    v_result.trace_count := 0;
    v_result.step_count := 0;
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
  'Recomputes every hash of one trace from its stored columns and says whether it is intact: VERIFIED, IN_PROGRESS, TAMPERED, BROKEN or NOT_FOUND, with the first bad step and the reason; and guard_status from the DDL audit over the trace''s lifetime (started_at .. its seal).';

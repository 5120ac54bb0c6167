-- Checks that bench/proposed.sql changes speed, not answers. Run as a superuser on a scratch
-- database migrated with migrations/committed and then bench/proposed.sql:
--   psql "$URL" -v ON_ERROR_STOP=1 -f bench/proposed-check.sql
-- Everything it writes is rolled back. It raises an exception at the first disagreement.
\set ON_ERROR_STOP on
begin;

-- The canonical function of migration 000001, for comparison (P1).
create function pg_temp.canonical_000001(s runproof.trace_steps) returns bytea
  language sql stable
  as $$
    select convert_to(jsonb_build_array(
      'runproof.step/1', s.tenant_id, s.run_id, s.trace_id, s.step_index, s.plan_step,
      s.skill, s.status, s.policy_decision, s.input, s.output, s.error,
      s.started_at at time zone 'UTC', s.finished_at at time zone 'UTC',
      s.duration_ms, s.cost_cents, s.source, s.level, s.recorded_at at time zone 'UTC'
    )::text, 'UTF8')
  $$;

-- Random adversarial text: control characters, JSON metacharacters, U+2028, 2-byte, CJK, astral.
create function pg_temp.rstr(n int) returns text language sql volatile as $$
  select coalesce(string_agg(case (random() * 9)::int
     when 0 then chr(1 + (random() * 31)::int)
     when 1 then (array['"', '\', '/', E'\u2028', E'\u00e9', E'\U0001F600', E'\u007f'])[1 + (random() * 6)::int]
     when 2 then chr(128 + (random() * 1792)::int)
     when 3 then chr(19968 + (random() * 4096)::int)
     when 4 then chr(127744 + (random() * 512)::int)
     else chr(32 + (random() * 94)::int) end, ''), '')
  from generate_series(1, n) $$;
-- Random nested jsonb with unsorted keys of mixed lengths and awkward numbers.
create function pg_temp.rjson(depth int) returns jsonb language sql volatile as $$
  select case when depth <= 0 or random() < 0.3 then
      (array[to_jsonb(pg_temp.rstr((random() * 8)::int)), to_jsonb((random() * 1e6)::numeric(20, 7)), 'null'::jsonb, 'true'::jsonb,
             '1e10'::jsonb, '-0'::jsonb, '1.500'::jsonb, '123456789012345678901234567890.12345'::jsonb, '[]'::jsonb, '{}'::jsonb])[1 + (random() * 9)::int]
    when random() < 0.5 then
      (select coalesce(jsonb_object_agg(pg_temp.rstr(1 + (random() * 6)::int), pg_temp.rjson(depth - 1)), '{}') from generate_series(1, (random() * 4)::int))
    else
      (select coalesce(jsonb_agg(pg_temp.rjson(depth - 1)), '[]') from generate_series(1, (random() * 4)::int))
    end $$;
create function pg_temp.rts() returns timestamptz language sql volatile as $$
  select case (random() * 6)::int when 0 then 'infinity'::timestamptz when 1 then '-infinity'::timestamptz
    when 2 then '0044-03-15 12:00:00.5 BC'::timestamptz + make_interval(secs => random() * 1e6)
    when 3 then date_trunc('second', now()) + make_interval(days => (random() * 1000)::int)
    else timestamptz '2000-01-01' + make_interval(secs => random() * 1e9) end $$;

-- P1: the proposed step_canonical gives the same bytes as migration 000001's on every row,
-- including rows no constraint would let in (NULLs, NaN).
do $$
declare
  v_cases integer;
  v_bad integer;
  v_example text;
begin
  create temp table canon_cases on commit drop as
  select (row(
    case when random() < 0.01 then null else gen_random_uuid() end, gen_random_uuid(), gen_random_uuid(),
    case when random() < 0.01 then null else (random() * 1e6)::int end, (random() * 1000)::int,
    case when random() < 0.5 then 'noop' else pg_temp.rstr(1 + (random() * 10)::int) end,
    (array['succeeded', 'failed', 'denied', pg_temp.rstr(3)])[1 + (random() * 3)::int],
    (array['allow', 'deny', pg_temp.rstr(2)])[1 + (random() * 2)::int],
    pg_temp.rjson(3), case when random() < 0.3 then null else pg_temp.rjson(3) end,
    case when random() < 0.6 then null else pg_temp.rstr((random() * 30)::int) end,
    pg_temp.rts(), pg_temp.rts(),
    case when random() < 0.05 then 'NaN'::numeric else (random() * 1e5)::numeric(12, 3) end,
    case when random() < 0.05 then null else (random() * 1e5)::numeric(14, 4) end,
    (array['worker', 'system', 'test', pg_temp.rstr(4)])[1 + (random() * 3)::int],
    (array['DEBUG', 'INFO', 'WARN', 'ERROR'])[1 + (random() * 3)::int],
    case when random() < 0.01 then null else pg_temp.rts() end, sha256('a'), sha256('b'))::runproof.trace_steps) as s
  from generate_series(1, 20000);
  select count(*), count(*) filter (where runproof_private.step_canonical(s) is distinct from pg_temp.canonical_000001(s))
    into v_cases, v_bad from canon_cases;
  if v_bad > 0 then
    select convert_from(pg_temp.canonical_000001(s), 'UTF8') into v_example from canon_cases
     where runproof_private.step_canonical(s) is distinct from pg_temp.canonical_000001(s) limit 1;
    raise exception 'P1: % of % rows get different canonical bytes, e.g. %', v_bad, v_cases, v_example;
  end if;
  raise notice 'P1: step_canonical is byte-identical to migration 000001''s on % adversarial rows', v_cases;
end
$$;

-- P2: on a trace of 60,000 steps (above the parallel threshold), the parallel check finds the same
-- first fault as the single pass, for each kind of tampering.
do $$
declare
  v_tenant uuid;
  v_agent uuid;
  v_run uuid;
  v_trace uuid;
  v_genesis bytea;
  v_case text;
  v_single record;
  v_parallel record;
  v_proof runproof.proof;
  v_tampers text[] := array[
    'none',
    'update runproof.trace_steps set input = ''{"x": 1}'' where trace_id = $1 and step_index = 30000',
    'update runproof.trace_steps set prev_hash = sha256(''x'') where trace_id = $1 and step_index = 40000',
    'update runproof.trace_steps set step_hash = sha256(''x'') where trace_id = $1 and step_index = 59999',
    'delete from runproof.trace_steps where trace_id = $1 and step_index = 20000',
    'delete from runproof.trace_steps where trace_id = $1 and step_index in (20000, 50000); update runproof.trace_steps set output = null where trace_id = $1 and step_index = 45000',
    'update runproof.trace_steps set output = null where trace_id = $1 and step_index = 45000; delete from runproof.trace_steps where trace_id = $1 and step_index = 50000',
    'update runproof.trace_steps set step_index = 60000 where trace_id = $1 and step_index = 59999',
    'delete from runproof.trace_steps where trace_id = $1 and step_index = 0',
    'update runproof.trace_steps s set step_hash = sha256(s.step_hash) where trace_id = $1 and step_index between 100 and 200'];
begin
  insert into runproof.skills (name) values ('noop') on conflict do nothing;
  v_tenant := (runproof_private.create_tenant('proposed-check ' || gen_random_uuid(), 1e9)).id;
  v_agent := (runproof.create_agent('agent', '', null, v_tenant)).id;
  insert into runproof.runs (tenant_id, agent_id, goal, origin_system_id, plan, status)
  values (v_tenant, v_agent, 'check', 'proposed-check', '{"version": 1, "steps": [{"skill": "noop"}]}', 'planned')
  returning id into v_run;
  v_trace := (runproof_private.start_attempt(v_tenant, v_run)).id;
  with d as (
    insert into runproof.policy_decisions (tenant_id, run_id, trace_id, step_index, plan_step, skill, decision, reason)
    select v_tenant, v_run, v_trace, g, g, 'noop', 'allow', 'check' from generate_series(0, 59999) g
    returning tenant_id, run_id, trace_id, step_index, plan_step, skill, decision)
  insert into runproof.trace_steps (tenant_id, run_id, trace_id, step_index, plan_step, skill, status, policy_decision,
                                    input, output, started_at, finished_at, duration_ms, cost_cents, source, level)
  select tenant_id, run_id, trace_id, step_index, plan_step, skill, 'succeeded', decision,
         jsonb_build_object('i', step_index), jsonb_build_object('echo', step_index), now(), now(), 0.5, 0, 'test', 'INFO'
    from d;
  analyze runproof.trace_steps;
  v_genesis := runproof_private.genesis_hash(v_tenant, v_run, v_trace);
  alter table runproof.trace_steps disable trigger all;
  foreach v_case in array v_tampers loop
    begin
      if v_case <> 'none' then
        execute v_case using v_trace;
      end if;
      select * into v_single from runproof_private.chain_faults(v_tenant, v_trace, v_genesis, 0);
      select * into v_parallel from runproof_private.chain_faults_parallel(v_tenant, v_trace, v_genesis);
      if (v_single.step_count, v_single.first_bad) is distinct from (v_parallel.step_count, v_parallel.first_bad) then
        raise exception 'P2: % -> single pass (%, %), parallel (%, %)', v_case,
          v_single.step_count, v_single.first_bad, v_parallel.step_count, v_parallel.first_bad;
      end if;
      v_proof := runproof.verify_trace(v_trace);
      raise notice 'P2: % -> % steps, first bad %, verify_trace % %', v_case, v_parallel.step_count,
        coalesce(v_parallel.first_bad::text, '-'), v_proof.verification_status, coalesce(v_proof.reason, '');
      raise sqlstate 'RPCHK';  -- undo this case's tampering
    exception when sqlstate 'RPCHK' then
      null;
    end;
  end loop;
  alter table runproof.trace_steps enable always trigger tg_trace_steps__chain;
end
$$;

rollback;

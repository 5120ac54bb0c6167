-- RunProof: demo data for docs/dba.md.
--
-- Run it once, as a superuser, on a freshly migrated, otherwise empty database. `npm run docs:dba`
-- does exactly that (and then runs the page's sessions); by hand:
--
--   createdb runproof_dba
--   DATABASE_URL=postgres://postgres@localhost/runproof_dba npm run migrate
--   psql -X -d runproof_dba -f docs/dba-seed.sql
--
-- It drives the ledger through the functions the worker calls (tasks/execute_run.ts,
-- sql/execution/; the worker calls them through runproof_private.advance_attempt, one statement
-- per step):
--   runproof_private.start_attempt  moves the run to running with a new attempt and opens its trace;
--   runproof_private.decide_step    takes the policy decision for the next step, just before it runs;
--   runproof_private.record_step    records the step (the database computes the decision hash, the
--                                   payload commitments and the chain hashes; the payloads go to
--                                   runproof.step_payloads) and the run's progress and spend, in one
--                                   transaction;
--   runproof_private.record_denial  records a step the policy denied and halts the run;
--   runproof_private.end_attempt    seals the trace and moves the run on (the database seals the run
--                                   when it finishes), with the incident if there is one.
-- Only the runs are inserted directly, already planned (as test/helpers/ledger.ts does), so that
-- they get fixed ids and no graphile-worker job: no worker will pick them up.
-- The ledger is append-only, so the script cannot be run twice on the same database: it stops
-- at the first duplicate key. Everything happens in one transaction, so a failed run leaves nothing.
--
-- Fixed ids, so the sessions in docs/dba.md can name them:
--   tenant 00000000-0000-0000-0000-00000000000a ("acme"),
--   agent  00000000-0000-0000-0000-0000000000a1 ("docs-agent", may call every skill),
--   agent  00000000-0000-0000-0000-0000000000a2 ("docs-restricted-agent", allowed_skills noop, json_transform)
--   run ...0001  succeeded, 1 attempt, 3 steps
--   run ...0002  succeeded on attempt 2 (attempt 1 failed at plan step 1 with a transient error)
--   run ...0003  halted: the policy denied plan step 1 (http_call is not in its agent's allowed_skills)
--   run ...0004  running, attempt 1 open with 2 of 4 steps (docs/dba.md seals it and ends the run)
--   run ...0005  planned, not started (docs/dba.md cancels it)
--   run ...0006  succeeded, 4 steps (docs/dba.md tampers with it)
--   run ...0007  succeeded, 1000 steps (for timing run_proof)
--   run ...0008  running, attempt 1 open with 2 of 4 steps (docs/dba.md appends to it)
--   run ...0009  succeeded, 2 steps with a personal e-mail address in them (docs/dba.md erases it)
-- Trace ids, incident ids, payload salts and so every hash are made by the database; look them up.

\set ON_ERROR_STOP on
begin;

insert into runproof.skills (name, description, side_effects) values
  ('noop', 'does nothing', false),
  ('http_call', 'calls an HTTP endpoint', true),
  ('json_transform', 'reshapes JSON', false)
on conflict (name) do nothing;

insert into runproof.tenants (id, name) values ('00000000-0000-0000-0000-00000000000a', 'acme');
insert into runproof.agents (tenant_id, id, name, description, allowed_skills) values
  ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-0000000000a1', 'docs-agent',
   'the agent of the DBA docs', null),
  ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-0000000000a2', 'docs-restricted-agent',
   'an agent that may not call http_call', '{noop,json_transform}');

-- A plan of n steps calling `skill`.
create function pg_temp.plan_of(n integer, skill text default 'noop') returns jsonb
  language sql as $$
    select jsonb_build_object('version', 1, 'planner', 'dba-seed',
      'steps', jsonb_agg(jsonb_build_object('skill', skill, 'input', jsonb_build_object('i', i)) order by i))
    from generate_series(0, n - 1) i
  $$;

-- A planned run, inserted directly (as test/helpers/ledger.ts does).
create function pg_temp.new_run(p_id uuid, p_goal text, p_plan jsonb,
                                p_agent uuid default '00000000-0000-0000-0000-0000000000a1') returns uuid
  language sql as $$
    insert into runproof.runs (tenant_id, id, agent_id, goal, origin_system_id, plan, status)
    values ('00000000-0000-0000-0000-00000000000a', p_id, p_agent, p_goal, 'dba-seed', p_plan, 'planned')
    returning id
  $$;

-- Opens the next attempt of a run (the run goes to running); returns the trace id.
create function pg_temp.start(p_run uuid) returns uuid
  language sql as $$
    select id from runproof_private.start_attempt('00000000-0000-0000-0000-00000000000a', p_run, '{"worker": "dba-seed"}')
  $$;

-- One step as the worker executes it: the policy decision for the next step (decide_step), then
-- the step with the run's progress (record_step), or, when the policy denied it, the denied step
-- with the run halted (record_denial). The step's skill and input come from the plan, its output
-- is {"ok": true, "i": <plan step>} unless p_output says otherwise. Returns the decision.
create function pg_temp.step(p_run uuid, p_trace uuid, p_index integer, p_plan_step integer,
                             p_status text default 'succeeded', p_error text default null,
                             p_output jsonb default null) returns text
  language plpgsql as $$
declare
  v_tenant constant uuid := '00000000-0000-0000-0000-00000000000a';
  v_step jsonb;
  v_decision text;
  v_start timestamptz := clock_timestamp();
begin
  select r.plan -> 'steps' -> p_plan_step into v_step from runproof.runs r where r.tenant_id = v_tenant and r.id = p_run;
  select d.decision into v_decision
    from runproof_private.decide_step(p_tenant_id => v_tenant, p_run_id => p_run, p_trace_id => p_trace,
           p_step_index => p_index, p_plan_step => p_plan_step, p_skill => v_step ->> 'skill',
           p_estimated_cents => 0.5) d;
  if v_decision = 'deny' then
    perform runproof_private.record_denial(p_tenant_id => v_tenant, p_run_id => p_run, p_trace_id => p_trace,
      p_step_index => p_index, p_input => v_step -> 'input');
    return v_decision;
  end if;
  perform runproof_private.record_step(
    p_tenant_id => v_tenant, p_run_id => p_run, p_trace_id => p_trace, p_step_index => p_index,
    p_plan_step => p_plan_step, p_skill => v_step ->> 'skill', p_status => p_status,
    p_input => v_step -> 'input',
    p_output => case when p_status = 'succeeded' then coalesce(p_output, jsonb_build_object('ok', true, 'i', p_plan_step)) end,
    p_error => case when p_status = 'failed' then p_error end,
    p_started_at => v_start, p_finished_at => v_start + interval '1.25 ms', p_duration_ms => 1.25,
    p_cost_cents => case when p_status = 'succeeded' then 0.5 else 0 end,
    p_level => case when p_status = 'succeeded' then 'INFO' else 'WARN' end);
  return v_decision;
end
$$;

-- Ends the attempt as the worker does (runproof_private.end_attempt).
create function pg_temp.finish(p_run uuid, p_trace uuid, p_trace_status text, p_run_status text,
                               p_error text default null, p_incident text default null, p_details jsonb default '{}') returns void
  language sql as $$
    select from runproof_private.end_attempt(
      p_tenant_id => '00000000-0000-0000-0000-00000000000a', p_run_id => p_run, p_trace_id => p_trace,
      p_trace_status => p_trace_status, p_run_status => p_run_status,
      p_error => p_error, p_incident_kind => p_incident, p_incident_details => p_details)
  $$;

do $$
declare
  r uuid;
  t uuid;
  d text;
begin
  -- ...0001: succeeded, one attempt, three steps.
  r := pg_temp.new_run('00000000-0000-0000-0000-000000000001', 'say hello three times', pg_temp.plan_of(3));
  t := pg_temp.start(r);
  for i in 0..2 loop perform pg_temp.step(r, t, i, i); end loop;
  perform pg_temp.finish(r, t, 'completed', 'succeeded');

  -- ...0002: attempt 1 fails at plan step 1 with a transient error, attempt 2 resumes there and succeeds.
  r := pg_temp.new_run('00000000-0000-0000-0000-000000000002', 'fetch and transform',
    '{"version": 1, "planner": "dba-seed", "steps": [
       {"skill": "noop", "input": {"i": 0}},
       {"skill": "http_call", "input": {"url": "https://example.com/status"}},
       {"skill": "json_transform", "input": {"data": {"ok": true}, "expression": "ok"}}]}');
  t := pg_temp.start(r);
  perform pg_temp.step(r, t, 0, 0);
  perform pg_temp.step(r, t, 1, 1, 'failed', 'CONNECTION_ERROR: GET https://example.com/status failed: ECONNRESET');
  perform pg_temp.finish(r, t, 'failed', 'retrying',
    'step 1 (http_call) failed: CONNECTION_ERROR: GET https://example.com/status failed: ECONNRESET', 'step_failed',
    '{"plan_step": 1, "skill": "http_call", "code": "CONNECTION_ERROR", "transient": true}');
  -- end_attempt queued the retry as a job; the attempt below is that job, so it is done.
  perform graphile_worker.remove_job('exec:' || r);
  t := pg_temp.start(r);
  perform pg_temp.step(r, t, 0, 1);
  perform pg_temp.step(r, t, 1, 2);
  perform pg_temp.finish(r, t, 'completed', 'succeeded');

  -- ...0003: halted, the policy denied plan step 1 (its agent may not call http_call).
  r := pg_temp.new_run('00000000-0000-0000-0000-000000000003', 'call an API the agent may not call',
    '{"version": 1, "planner": "dba-seed", "steps": [{"skill": "noop", "input": {}}, {"skill": "http_call", "input": {"url": "https://example.com"}}]}',
    '00000000-0000-0000-0000-0000000000a2');
  t := pg_temp.start(r);
  perform pg_temp.step(r, t, 0, 0);
  -- record_denial records the denied step, seals the trace failed and halts the run, with a
  -- skill_denied incident.
  d := pg_temp.step(r, t, 1, 1);
  if d <> 'deny' then raise exception 'run ...0003: expected the policy to deny step 1, got %', d; end if;

  -- ...0004: running, attempt 1 open with two of four steps.
  r := pg_temp.new_run('00000000-0000-0000-0000-000000000004', 'a run in flight', pg_temp.plan_of(4));
  t := pg_temp.start(r);
  perform pg_temp.step(r, t, 0, 0);
  perform pg_temp.step(r, t, 1, 1);

  -- ...0005: planned, not started.
  perform pg_temp.new_run('00000000-0000-0000-0000-000000000005', 'waiting for a worker', pg_temp.plan_of(2));

  -- ...0006: succeeded, four steps.
  r := pg_temp.new_run('00000000-0000-0000-0000-000000000006', 'four quick steps', pg_temp.plan_of(4));
  t := pg_temp.start(r);
  for i in 0..3 loop perform pg_temp.step(r, t, i, i); end loop;
  perform pg_temp.finish(r, t, 'completed', 'succeeded');

  -- ...0007: succeeded, 1000 steps.
  r := pg_temp.new_run('00000000-0000-0000-0000-000000000007', 'a long run', pg_temp.plan_of(1000));
  t := pg_temp.start(r);
  for i in 0..999 loop perform pg_temp.step(r, t, i, i); end loop;
  perform pg_temp.finish(r, t, 'completed', 'succeeded');

  -- ...0008: running, attempt 1 open with two of four steps.
  r := pg_temp.new_run('00000000-0000-0000-0000-000000000008', 'another run in flight', pg_temp.plan_of(4));
  t := pg_temp.start(r);
  perform pg_temp.step(r, t, 0, 0);
  perform pg_temp.step(r, t, 1, 1);

  -- ...0009: succeeded, two steps that hold a customer's e-mail address (docs/dba.md erases them).
  r := pg_temp.new_run('00000000-0000-0000-0000-000000000009', 'look up a customer and write to them',
    '{"version": 1, "planner": "dba-seed", "steps": [
       {"skill": "noop", "input": {"customer": "jane.doe@example.com"}},
       {"skill": "noop", "input": {"to": "jane.doe@example.com", "subject": "your order"}}]}');
  t := pg_temp.start(r);
  perform pg_temp.step(r, t, 0, 0, p_output => '{"name": "Jane Doe", "email": "jane.doe@example.com"}');
  perform pg_temp.step(r, t, 1, 1, p_output => '{"sent": true}');
  perform pg_temp.finish(r, t, 'completed', 'succeeded');
end
$$;

commit;

select r.id as run_id, r.status, r.attempts, r.next_plan_step as progress,
       jsonb_array_length(r.plan -> 'steps') as plan_steps, r.trace_count,
       (select count(*) from runproof.trace_steps s where s.tenant_id = r.tenant_id and s.run_id = r.id) as steps
  from runproof.runs r order by r.id;

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
alter table runproof.log_leaves enable row level security;
alter table runproof.log_checkpoints enable row level security;
alter table runproof.log_anchor_receipts enable row level security;
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
drop policy if exists select_own on runproof.log_leaves;
create policy select_own on runproof.log_leaves for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));
drop policy if exists select_own on runproof.log_checkpoints;
create policy select_own on runproof.log_checkpoints for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));
drop policy if exists select_own on runproof.log_anchor_receipts;
create policy select_own on runproof.log_anchor_receipts for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));

--------------------------------------------------------------------------------
-- Tenants read; every write goes through the SQL functions below
--------------------------------------------------------------------------------

grant select on runproof.tenants, runproof.agents, runproof.skills, runproof.runs, runproof.traces,
  runproof.policy_decisions, runproof.trace_steps, runproof.incidents, runproof.agent_memory,
  runproof.step_payloads, runproof.payload_erasures, runproof.payload_erasure_steps,
  runproof.log_leaves, runproof.log_checkpoints, runproof.log_anchor_receipts to runproof_tenant;

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
  runproof.runs_is_finished(runproof.runs),
  runproof.log_inclusion_proof(uuid, bigint, bigint),
  runproof.log_consistency_proof(uuid, bigint, bigint),
  runproof.log_status(uuid),
  runproof.tenants_log_status(runproof.tenants)
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
  runproof_private.guard_status(timestamptz, timestamptz),
  runproof_private.run_log_proof(uuid, uuid)
  to runproof_tenant;

-- PostGraphile's login maps an API key to its tenant, and nothing else.
grant execute on function runproof_private.authenticate(text) to runproof_authenticator;

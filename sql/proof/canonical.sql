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

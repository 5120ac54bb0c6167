--! Message: proof format 2

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

--!include proof/canonical.sql
--!include ledger/plan.sql
--!include ledger/runs.sql
--!include ledger/traces.sql
--!include ledger/trace_steps.sql
--!include ledger/incidents.sql
--!include ledger/payloads.sql
--!include proof/verify_trace.sql
--!include proof/run_proof.sql
--!include execution/record_step.sql
--!include execution/attempts.sql
--!include execution/planning.sql
--!include execution/recovery.sql
--!include api/erasure.sql
--!include api/graphql.sql

-- Issue 13 (GraphQL/HTTP half): API keys may expire, their revocation is announced, names refuse
-- control and bidi characters, agents' limits are named, plan step inputs fit their skill's schema.
alter table runproof_private.api_keys add column if not exists expires_at timestamptz;
comment on column runproof_private.api_keys.expires_at is 'When the key stops authenticating (RPKEX); NULL: never.';
drop function if exists runproof_private.create_api_key(uuid, text);

--!include common/values.sql
--!include common/json_schema.sql
--!include ledger/run_origin.sql
--!include ledger/plan.sql
--!include api/tenants.sql
--!include api/agents.sql
--!include api/api_keys.sql
--!include execution/cancel.sql

-- Issue 12: ledger checkpoints. Every tenant has a Merkle log (RFC 9162) of its sealed runs, one
-- leaf per run appended in the run's seal transaction; a worker signs its head as a C2SP
-- checkpoint (the key is outside the database) and anchors it outside (docs/proof-format.md 13).
create table if not exists runproof.log_leaves (
  tenant_id uuid not null,
  leaf_index bigint not null check (leaf_index >= 0),
  run_id uuid not null,
  leaf bytea not null,
  leaf_hash bytea not null check (octet_length(leaf_hash) = 32),
  primary key (tenant_id, leaf_index),
  unique (tenant_id, run_id)
);
comment on table runproof.log_leaves is 'Each tenant''s Merkle log of sealed runs (docs/proof-format.md section 13): leaf i is the i-th run the tenant sealed. Appended by the run''s seal (tg_runs__log_append), never changed.';
comment on column runproof.log_leaves.tenant_id is 'The tenant whose log this is.';
comment on column runproof.log_leaves.leaf_index is 'The leaf''s position in the tenant''s log: 0, 1, 2, ...';
comment on column runproof.log_leaves.run_id is 'The sealed run.';
comment on column runproof.log_leaves.leaf is 'The leaf''s bytes: the canonical text ["runproof.log-leaf/1", tenant, run, run root, status, finished_at].';
comment on column runproof.log_leaves.leaf_hash is 'sha256(0x00 || leaf) (RFC 9162 section 2.1.1).';
comment on constraint log_leaves_tenant_id_run_id_key on runproof.log_leaves is 'A run is logged once.';

create table if not exists runproof_private.log_nodes (
  tenant_id uuid not null,
  level smallint not null check (level between 1 and 62),
  node_index bigint not null check (node_index >= 0),
  hash bytea not null check (octet_length(hash) = 32),
  primary key (tenant_id, level, node_index)
);
comment on table runproof_private.log_nodes is 'The complete subtrees of each tenant''s log: node (level, i) is the hash of leaves i*2^level .. (i+1)*2^level - 1 (level 0 is log_leaves.leaf_hash). Written by log_append as a subtree completes, never changed: appends, roots and proofs read O(log n) of them.';
comment on column runproof_private.log_nodes.tenant_id is 'The tenant whose log this is.';
comment on column runproof_private.log_nodes.level is 'The subtree''s height: it covers 2^level leaves.';
comment on column runproof_private.log_nodes.node_index is 'Its position among the subtrees of that height.';
comment on column runproof_private.log_nodes.hash is 'sha256(0x01 || left || right).';

create table if not exists runproof.log_checkpoints (
  tenant_id uuid not null,
  tree_size bigint not null check (tree_size > 0),
  root_hash bytea not null check (octet_length(root_hash) = 32),
  note text not null,
  key_name text not null,
  verifier_key text not null,
  signed_at timestamptz not null default now(),
  primary key (tenant_id, tree_size)
);
comment on table runproof.log_checkpoints is 'The signed checkpoints of each tenant''s log (C2SP tlog-checkpoint signed notes, Ed25519; docs/proof-format.md section 14). Append-only; the signing key is never in the database.';
comment on column runproof.log_checkpoints.tenant_id is 'The tenant whose log was signed.';
comment on column runproof.log_checkpoints.tree_size is 'How many leaves the checkpoint covers.';
comment on column runproof.log_checkpoints.root_hash is 'The RFC 9162 root of the first tree_size leaves.';
comment on column runproof.log_checkpoints.note is 'The signed note, exactly as signed and anchored.';
comment on column runproof.log_checkpoints.key_name is 'The signing key''s name (the note''s signature line).';
comment on column runproof.log_checkpoints.verifier_key is 'The signing key as a C2SP verifier key (name+keyid+base64(0x01 || public key)); an auditor takes it from the operator, not from here.';
comment on column runproof.log_checkpoints.signed_at is 'When it was signed.';

create table if not exists runproof_private.log_anchor_jobs (
  tenant_id uuid not null,
  tree_size bigint not null,
  anchor text not null check (anchor ~ '^[a-z][a-z0-9_-]{0,62}$'),
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  last_error text,
  done_at timestamptz,
  primary key (tenant_id, tree_size, anchor),
  foreign key (tenant_id, tree_size) references runproof.log_checkpoints (tenant_id, tree_size)
);
create index if not exists log_anchor_jobs_due_idx on runproof_private.log_anchor_jobs (next_attempt_at) where done_at is null;
comment on table runproof_private.log_anchor_jobs is 'What each anchor still has to receive: one row per checkpoint and configured anchor, retried with backoff until it is anchored (done_at). The backlog is what has no done_at.';
comment on column runproof_private.log_anchor_jobs.tenant_id is 'The checkpoint''s tenant.';
comment on column runproof_private.log_anchor_jobs.tree_size is 'The checkpoint''s size.';
comment on column runproof_private.log_anchor_jobs.anchor is 'The anchor''s name (RUNPROOF_CHECKPOINT_ANCHORS).';
comment on column runproof_private.log_anchor_jobs.attempts is 'Failed attempts so far.';
comment on column runproof_private.log_anchor_jobs.next_attempt_at is 'When to try again.';
comment on column runproof_private.log_anchor_jobs.last_error is 'The last failure, as the anchor reported it.';
comment on column runproof_private.log_anchor_jobs.done_at is 'When it was anchored (or superseded by a later checkpoint the anchor took).';
comment on index runproof_private.log_anchor_jobs_due_idx is 'Serves picking the anchor jobs that are due.';

create table if not exists runproof.log_anchor_receipts (
  tenant_id uuid not null,
  tree_size bigint not null,
  anchor text not null,
  kind text not null check (kind in ('directory', 'witness', 'rfc3161')),
  receipt text not null,
  anchored_at timestamptz not null default now(),
  primary key (tenant_id, tree_size, anchor),
  foreign key (tenant_id, tree_size) references runproof.log_checkpoints (tenant_id, tree_size)
);
comment on table runproof.log_anchor_receipts is 'What each anchor returned for a checkpoint: the file written, the witness''s cosignature line, or the RFC 3161 timestamp token (base64 DER). Append-only.';
comment on column runproof.log_anchor_receipts.tenant_id is 'The checkpoint''s tenant.';
comment on column runproof.log_anchor_receipts.tree_size is 'The checkpoint''s size.';
comment on column runproof.log_anchor_receipts.anchor is 'The anchor''s name.';
comment on column runproof.log_anchor_receipts.kind is 'directory, witness or rfc3161.';
comment on column runproof.log_anchor_receipts.receipt is 'The receipt: a path, a C2SP cosignature line, or a base64 timestamp token.';
comment on column runproof.log_anchor_receipts.anchored_at is 'When it was recorded.';

do $$
begin
  if not exists (select 1 from pg_attribute where attrelid = 'runproof.proof'::regclass and attname = 'leaf_index') then
    alter type runproof.proof add attribute leaf_index bigint, add attribute checkpoint_size bigint,
      add attribute inclusion_proof text[], add attribute checkpoint text;
  end if;
end
$$;
comment on column runproof.proof.leaf_index is 'A sealed run''s leaf in its tenant''s log (docs/proof-format.md section 13), NULL otherwise.';
comment on column runproof.proof.checkpoint_size is 'The size of the latest checkpoint of the tenant''s log, NULL when there is none.';
comment on column runproof.proof.inclusion_proof is 'The RFC 9162 inclusion proof of the run''s leaf in that checkpoint (hex hashes, leaf upwards); NULL when the run is not checkpointed yet.';
comment on column runproof.proof.checkpoint is 'That checkpoint''s signed note.';

do $$
begin
  if to_regtype('runproof.log_status') is null then
    create type runproof.log_status as (
      tenant_id uuid, log_size bigint, checkpoint_size bigint, checkpoint text, checkpoint_signed_at timestamptz,
      key_name text, verifier_key text, not_checkpointed bigint, anchor_backlog bigint, anchor_failing bigint,
      anchor_backlog_from bigint, anchor_last_error text);
  end if;
end
$$;
comment on type runproof.log_status is 'A tenant''s Merkle log: its size, latest checkpoint and anchor backlog.';
comment on column runproof.log_status.tenant_id is 'The tenant.';
comment on column runproof.log_status.log_size is 'How many sealed runs its log holds.';
comment on column runproof.log_status.checkpoint_size is 'The size of the latest checkpoint (NULL: none yet).';
comment on column runproof.log_status.checkpoint is 'The latest checkpoint''s signed note.';
comment on column runproof.log_status.checkpoint_signed_at is 'When it was signed.';
comment on column runproof.log_status.key_name is 'The checkpoint signing key''s name.';
comment on column runproof.log_status.verifier_key is 'The signing key as a C2SP verifier key (name+keyid+base64 key); compare it with the one the operator publishes.';
comment on column runproof.log_status.not_checkpointed is 'Leaves (sealed runs) after the latest checkpoint.';
comment on column runproof.log_status.anchor_backlog is 'Checkpoint-anchor pairs not anchored yet.';
comment on column runproof.log_status.anchor_failing is 'Of those, how many failed at least once (retried with backoff).';
comment on column runproof.log_status.anchor_backlog_from is 'The smallest checkpoint size not anchored everywhere.';
comment on column runproof.log_status.anchor_last_error is 'The first pending anchor''s last error.';

--!include log/leaf.sql
--!include log/tree.sql
--!include log/append.sql
--!include log/proofs.sql
--!include log/checkpoints.sql
--!include log/verify_against.sql
--!include proof/run_proof.sql
--!include proof/verify_all.sql

--!include api/access.sql

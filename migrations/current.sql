-- The change being developed: edit sql/, include each changed file here (--!include <path under sql/>),
-- add table changes as plain SQL, and commit it with `npm run gm -- commit -m "..."` (docs/CONVENTIONS.md).

-- Issue 13 (PostgreSQL 15, owner deployments): the per-row look-ups of an append keep index plans
-- (set-based appends were quadratic on PostgreSQL 15: bench/append-scaling.ts).
--!include ledger/policy_decisions.sql
--!include ledger/trace_steps.sql
--!include ledger/payloads.sql

-- Every key of a tenant table includes tenant_id (test/catalog-tenant-keys.test.ts: the path to
-- distributing by tenant_id stays open). A key's hash stays unique per tenant; the look-up by hash
-- alone (runproof_private.authenticate) has an index of its own.
alter table runproof_private.api_keys drop constraint if exists api_keys_key_hash_key;
do $$
begin
  if not exists (select 1 from pg_constraint where conname = 'api_keys_tenant_id_key_hash_key'
                  and conrelid = 'runproof_private.api_keys'::regclass) then
    alter table runproof_private.api_keys add constraint api_keys_tenant_id_key_hash_key unique (tenant_id, key_hash);
  end if;
end
$$;
create index if not exists api_keys_key_hash_idx on runproof_private.api_keys (key_hash);
comment on index runproof_private.api_keys_key_hash_idx is 'Serves authenticating a key by its hash (runproof_private.authenticate), which knows no tenant yet.';

-- Issue 14: step transactions never NOTIFY (PostgreSQL serialises NOTIFYing commits
-- cluster-wide across the WAL flush); the worker announces steps after their commit, batched, and
-- makes one statement per step (advance_attempt).
drop trigger if exists tg_trace_steps__notify on runproof.trace_steps;
drop function if exists runproof_private.tg_trace_steps__notify();
delete from runproof_private.guard_descriptions where table_name = 'trace_steps' and trigger_name = 'tg_trace_steps__notify';
--!include execution/notify.sql
--!include execution/record_step.sql
--!include execution/advance.sql
--!include ledger/runs.sql

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

-- Issue 16: hints name the CLI as it is called in a clone, `npx runproof ...` (hint texts only).
--!include common/request.sql
--!include api/tenants.sql
--!include api/agents.sql
--!include api/api_keys.sql
--!include api/erasure.sql
--!include execution/enqueue.sql
--!include execution/cancel.sql

-- The run list (the web explorer, runs(condition: {status | agentId}, orderBy: CREATED_AT_DESC)):
-- filtered pages in keyset order straight from an index. With only (tenant_id, agent_id), the first
-- page of an agent whose 2,000 runs are the oldest of 1,000,000 scanned the created_at index for
-- 0.9 s; with these, 9 ms. They replace the two-column indexes they begin with.
create index if not exists runs_tenant_status_created_idx on runproof.runs (tenant_id, status, created_at desc, id desc);
create index if not exists runs_tenant_agent_created_idx on runproof.runs (tenant_id, agent_id, created_at desc, id desc);
comment on index runproof.runs_tenant_status_created_idx is 'Serves a tenant''s runs of one status, newest first, in keyset pages.';
comment on index runproof.runs_tenant_agent_created_idx is 'Serves a tenant''s runs of one agent, newest first, in keyset pages (and the agents foreign key).';
drop index if exists runproof.runs_tenant_status_idx;
drop index if exists runproof.runs_tenant_agent_idx;

--!include api/access.sql

-- Checkpoints of the tenants' logs and their anchors: which logs grew and need signing (the worker
-- signs outside the database, tasks/checkpoint.ts), storing a signed checkpoint (append-only, its
-- root checked against the log), the anchor jobs with their backoff, receipts, and the status.
-- The log tables are guarded like the ledger: no UPDATE, DELETE or TRUNCATE, for any role.

create or replace trigger tg_log_leaves__append_only before update or delete on runproof.log_leaves
  for each row execute function runproof_private.tg__append_only('tenant_id', 'leaf_index');
create or replace trigger tg_log_leaves__no_truncate before truncate on runproof.log_leaves
  for each statement execute function runproof_private.tg__no_truncate();
alter table runproof.log_leaves enable always trigger tg_log_leaves__append_only;
alter table runproof.log_leaves enable always trigger tg_log_leaves__no_truncate;
create or replace trigger tg_log_nodes__append_only before update or delete on runproof_private.log_nodes
  for each row execute function runproof_private.tg__append_only('tenant_id', 'level', 'node_index');
create or replace trigger tg_log_nodes__no_truncate before truncate on runproof_private.log_nodes
  for each statement execute function runproof_private.tg__no_truncate();
alter table runproof_private.log_nodes enable always trigger tg_log_nodes__append_only;
alter table runproof_private.log_nodes enable always trigger tg_log_nodes__no_truncate;
create or replace trigger tg_log_checkpoints__append_only before update or delete on runproof.log_checkpoints
  for each row execute function runproof_private.tg__append_only('tenant_id', 'tree_size');
create or replace trigger tg_log_checkpoints__no_truncate before truncate on runproof.log_checkpoints
  for each statement execute function runproof_private.tg__no_truncate();
alter table runproof.log_checkpoints enable always trigger tg_log_checkpoints__append_only;
alter table runproof.log_checkpoints enable always trigger tg_log_checkpoints__no_truncate;
create or replace trigger tg_log_anchor_receipts__append_only before update or delete on runproof.log_anchor_receipts
  for each row execute function runproof_private.tg__append_only('tenant_id', 'tree_size', 'anchor');
create or replace trigger tg_log_anchor_receipts__no_truncate before truncate on runproof.log_anchor_receipts
  for each statement execute function runproof_private.tg__no_truncate();
alter table runproof.log_anchor_receipts enable always trigger tg_log_anchor_receipts__append_only;
alter table runproof.log_anchor_receipts enable always trigger tg_log_anchor_receipts__no_truncate;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('log_leaves', 'tg_log_leaves__append_only', 'UPDATE, DELETE (RPIMM)', 'INSERT by the run''s seal (log_append)'),
  ('log_leaves', 'tg_log_leaves__no_truncate', 'TRUNCATE (RPIMM)', 'nothing'),
  ('log_checkpoints', 'tg_log_checkpoints__append_only', 'UPDATE, DELETE (RPIMM)', 'INSERT of a checkpoint whose root is the log''s (record_checkpoints)'),
  ('log_checkpoints', 'tg_log_checkpoints__no_truncate', 'TRUNCATE (RPIMM)', 'nothing'),
  ('log_anchor_receipts', 'tg_log_anchor_receipts__append_only', 'UPDATE, DELETE (RPIMM)', 'INSERT of an anchor''s receipt'),
  ('log_anchor_receipts', 'tg_log_anchor_receipts__no_truncate', 'TRUNCATE (RPIMM)', 'nothing')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
-- The tree's stored nodes are in the private schema (no tenant reads them directly: inclusion
-- proofs are computed from them), guarded the same way.
insert into runproof_private.guard_descriptions (table_schema, table_name, trigger_name, blocks, allows) values
  ('runproof_private', 'log_nodes', 'tg_log_nodes__append_only', 'UPDATE, DELETE (RPIMM)', 'INSERT of the subtrees a leaf completes (log_append)'),
  ('runproof_private', 'log_nodes', 'tg_log_nodes__no_truncate', 'TRUNCATE (RPIMM)', 'nothing')
on conflict (table_name, trigger_name) do update
  set table_schema = excluded.table_schema, blocks = excluded.blocks, allows = excluded.allows;

create or replace function runproof_private.log_heads_to_sign(p_limit integer) returns table (tenant_id uuid, tree_size bigint, root_hash bytea)
  language sql stable
  set search_path = pg_catalog
  as $$
    select h.tenant_id, h.size, runproof_private.log_root(h.tenant_id, h.size)
      from (select t.id as tenant_id, runproof_private.log_size(t.id) as size,
                   coalesce((select c.tree_size from runproof.log_checkpoints c where c.tenant_id = t.id
                              order by c.tree_size desc limit 1), 0) as signed
              from runproof.tenants t) h
     where h.size > h.signed
     order by h.tenant_id
     limit p_limit
  $$;
comment on function runproof_private.log_heads_to_sign(integer) is
  'The logs that grew since their latest checkpoint: tenant, size and RFC 9162 root to sign (tasks/checkpoint.ts).';

create or replace function runproof_private.checkpoint_body_root(p_note text) returns bytea
  language sql immutable strict parallel safe
  as $$ select decode(split_part(p_note, E'\n', 3), 'base64') $$;
comment on function runproof_private.checkpoint_body_root(text) is 'The root hash a C2SP checkpoint note states (its third line, base64).';

create or replace function runproof_private.record_checkpoints(p_tenant_ids uuid[], p_sizes bigint[], p_notes text[],
  p_key_name text, p_verifier_key text, p_anchors text[]) returns integer
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_n integer;
  v_bad record;
begin
  -- Each note must state the log's own root at its size, and its size must be new.
  select c.tenant_id, c.size into v_bad
    from unnest(p_tenant_ids, p_sizes, p_notes) c(tenant_id, size, note)
   where split_part(c.note, E'\n', 2) <> c.size::text
      or runproof_private.checkpoint_body_root(c.note) is distinct from runproof_private.log_root(c.tenant_id, c.size)
      or c.size > runproof_private.log_size(c.tenant_id)
   limit 1;
  if found then
    raise exception 'the checkpoint of tenant % at size % does not state that log''s root', v_bad.tenant_id, v_bad.size
      using errcode = 'RPLOG', hint = 'sign the heads runproof_private.log_heads_to_sign returns';
  end if;
  insert into runproof.log_checkpoints (tenant_id, tree_size, root_hash, note, key_name, verifier_key)
    select c.tenant_id, c.size, runproof_private.checkpoint_body_root(c.note), c.note, p_key_name, p_verifier_key
      from unnest(p_tenant_ids, p_sizes, p_notes) c(tenant_id, size, note)
    on conflict do nothing;
  get diagnostics v_n = row_count;
  insert into runproof_private.log_anchor_jobs (tenant_id, tree_size, anchor)
    select c.tenant_id, c.size, a.anchor
      from unnest(p_tenant_ids, p_sizes) c(tenant_id, size) cross join unnest(p_anchors) a(anchor)
    on conflict do nothing;
  return v_n;
end
$$;
comment on function runproof_private.record_checkpoints(uuid[], bigint[], text[], text, text, text[]) is
  'Stores signed checkpoints (one per tenant given; each note must state the log''s root at its size, RPLOG) and queues them for each anchor. Returns how many were new.';

create or replace function runproof_private.due_anchor_jobs(p_limit integer) returns table (
  tenant_id uuid, tree_size bigint, anchor text, attempts integer, note text)
  language sql volatile
  set search_path = pg_catalog
  as $$
    select j.tenant_id, j.tree_size, j.anchor, j.attempts, c.note
      from runproof_private.log_anchor_jobs j
      join runproof.log_checkpoints c on c.tenant_id = j.tenant_id and c.tree_size = j.tree_size
     where j.done_at is null and j.next_attempt_at <= now()
     order by j.tenant_id, j.anchor, j.tree_size
     limit p_limit
  $$;
comment on function runproof_private.due_anchor_jobs(integer) is
  'The anchor jobs that are due, each tenant''s and anchor''s in size order (a witness takes them in order).';

create or replace function runproof_private.record_anchor_receipt(p_tenant_id uuid, p_tree_size bigint, p_anchor text, p_kind text, p_receipt text) returns void
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  insert into runproof.log_anchor_receipts (tenant_id, tree_size, anchor, kind, receipt)
    values (p_tenant_id, p_tree_size, p_anchor, p_kind, p_receipt)
    on conflict do nothing;
  -- The anchor holds this checkpoint; older ones it has not taken are superseded by it.
  update runproof_private.log_anchor_jobs j set done_at = now(), last_error = null
   where j.tenant_id = p_tenant_id and j.anchor = p_anchor and j.tree_size <= p_tree_size and j.done_at is null;
end
$$;
comment on function runproof_private.record_anchor_receipt(uuid, bigint, text, text, text) is
  'Records what an anchor returned for a checkpoint, and marks it (and the older checkpoints it supersedes for that anchor) done.';

create or replace function runproof_private.record_anchor_failure(p_tenant_id uuid, p_tree_size bigint, p_anchor text, p_error text,
  p_base_ms integer, p_max_ms integer) returns timestamptz
  language sql volatile
  set search_path = pg_catalog
  as $$
    update runproof_private.log_anchor_jobs j
       set attempts = j.attempts + 1, last_error = left(p_error, 2000),
           next_attempt_at = now() + make_interval(secs => least(p_max_ms::float8, p_base_ms::float8 * power(2, least(j.attempts, 30))) / 1000)
     where j.tenant_id = p_tenant_id and j.tree_size = p_tree_size and j.anchor = p_anchor
    returning j.next_attempt_at
  $$;
comment on function runproof_private.record_anchor_failure(uuid, bigint, text, text, integer, integer) is
  'Records a failed anchor attempt and when to retry: base * 2^attempts, at most max (milliseconds). Runs never wait for anchors.';

create or replace function runproof.log_status(tenant_id uuid) returns runproof.log_status
  language plpgsql stable security definer
  set search_path = pg_catalog
  as $$
declare
  v_tenant uuid := runproof_private.request_tenant(log_status.tenant_id);
  v runproof.log_status;
begin
  v.tenant_id := v_tenant;
  v.log_size := runproof_private.log_size(v_tenant);
  select c.tree_size, c.note, c.signed_at, c.key_name, c.verifier_key
    into v.checkpoint_size, v.checkpoint, v.checkpoint_signed_at, v.key_name, v.verifier_key
    from runproof.log_checkpoints c where c.tenant_id = v_tenant order by c.tree_size desc limit 1;
  v.not_checkpointed := v.log_size - coalesce(v.checkpoint_size, 0);
  select count(*), count(*) filter (where j.attempts > 0), min(j.tree_size),
         (array_agg(j.anchor || ': ' || j.last_error order by j.tree_size) filter (where j.last_error is not null))[1]
    into v.anchor_backlog, v.anchor_failing, v.anchor_backlog_from, v.anchor_last_error
    from runproof_private.log_anchor_jobs j where j.tenant_id = v_tenant and j.done_at is null;
  return v;
end
$$;
comment on function runproof.log_status(uuid) is
  'The tenant''s log: its size, the latest checkpoint (note, key name and verifier key), how many leaves are not checkpointed yet, and the anchor backlog (checkpoints not yet anchored, how many failed, the first error).';

create or replace function runproof.tenants_log_status(t runproof.tenants) returns runproof.log_status
  language sql stable
  set search_path = pg_catalog
  as $$ select runproof.log_status(t.id) $$;
comment on function runproof.tenants_log_status(runproof.tenants) is 'The tenant''s Merkle log and its checkpoints and anchors (runproof.log_status).';

create or replace function runproof_private.anchor_problems() returns table (tenant_id uuid, reason text)
  language sql stable
  set search_path = pg_catalog
  as $$
    select j.tenant_id,
           format('anchor %s: %s checkpoint(s) not anchored after failures (sizes %s to %s); last error: %s',
                  j.anchor, count(*), min(j.tree_size), max(j.tree_size),
                  (array_agg(j.last_error order by j.tree_size desc))[1])
      from runproof_private.log_anchor_jobs j
     where j.done_at is null and j.attempts > 0
     group by j.tenant_id, j.anchor
     order by j.tenant_id, j.anchor
  $$;
comment on function runproof_private.anchor_problems() is
  'The anchor backlog that failed: per tenant and anchor, the checkpoints an anchor has not taken after at least one failure (listed by verify_all as ANCHOR_BACKLOG).';

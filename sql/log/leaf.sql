-- The bytes of a tenant's Merkle log (docs/proof-format.md section 13): a leaf commits to a sealed
-- run (tenant, run, run root, final status, seal time), hashed as RFC 9162 leaves and nodes.
-- The offline verifier (src/lib/offline-checkpoint.ts) computes the same bytes.

create or replace function runproof_private.log_leaf(p_tenant_id uuid, p_run_id uuid, p_root_hash bytea, p_status text, p_finished_at timestamptz) returns bytea
  language sql stable parallel safe
  as $$
    select convert_to(format('["runproof.log-leaf/1", "%s", "%s", "%s", %s, %s]',
      p_tenant_id, p_run_id, encode(p_root_hash, 'hex'), to_json(p_status), to_json(p_finished_at at time zone 'UTC')), 'UTF8')
  $$;
comment on function runproof_private.log_leaf(uuid, uuid, bytea, text, timestamptz) is
  'The bytes of a run''s leaf in its tenant''s log: ["runproof.log-leaf/1", tenant_id, run_id, hex(run root), status, finished_at] (docs/proof-format.md section 13). No SET clause, so that it inlines.';

create or replace function runproof_private.log_leaf_hash(p_leaf bytea) returns bytea
  language sql immutable strict parallel safe
  as $$ select sha256('\x00'::bytea || p_leaf) $$;
comment on function runproof_private.log_leaf_hash(bytea) is 'RFC 9162 leaf hash: sha256(0x00 || leaf).';

create or replace function runproof_private.log_node_hash(p_left bytea, p_right bytea) returns bytea
  language sql immutable strict parallel safe
  as $$ select sha256('\x01'::bytea || p_left || p_right) $$;
comment on function runproof_private.log_node_hash(bytea, bytea) is 'RFC 9162 interior node hash: sha256(0x01 || left || right).';

create or replace function runproof_private.log_floor_log2(p_n bigint) returns integer
  language sql immutable strict parallel safe
  as $$ select 64 - position('1' in p_n::bit(64)::text) $$;
comment on function runproof_private.log_floor_log2(bigint) is 'floor(log2 n) of a positive n, exactly (from its bits).';

create or replace function runproof_private.log_largest_power_below(p_n bigint) returns bigint
  language sql immutable strict parallel safe
  as $$ select 1::bigint << runproof_private.log_floor_log2(p_n - 1) $$;
comment on function runproof_private.log_largest_power_below(bigint) is 'RFC 9162''s k: the largest power of two smaller than n (n >= 2).';

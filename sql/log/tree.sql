-- A tenant's Merkle log kept as its complete subtrees (runproof_private.log_nodes): appending a
-- leaf writes the leaf and the subtrees it completes (one on average), and any root or subtree
-- hash is read from O(log n) stored nodes; the tree is never recomputed.

create or replace function runproof_private.log_node(p_tenant_id uuid, p_level integer, p_index bigint) returns bytea
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_hash bytea;
begin
  if p_level = 0 then
    select l.leaf_hash into v_hash from runproof.log_leaves l where l.tenant_id = p_tenant_id and l.leaf_index = p_index;
  else
    select n.hash into v_hash from runproof_private.log_nodes n
     where n.tenant_id = p_tenant_id and n.level = p_level and n.node_index = p_index;
  end if;
  if v_hash is null then
    raise exception 'the log of tenant % has no node at level %, index %', p_tenant_id, p_level, p_index
      using errcode = 'RPLOG', hint = 'the log is incomplete: run runproof verify-all --against with the anchored checkpoints';
  end if;
  return v_hash;
end
$$;
comment on function runproof_private.log_node(uuid, integer, bigint) is
  'The stored hash of a complete subtree of a tenant''s log: a leaf hash at level 0, else log_nodes (RPLOG when missing).';

create or replace function runproof_private.log_subtree(p_tenant_id uuid, p_start bigint, p_size bigint) returns bytea
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_k bigint;
  v_right bytea;
  v_lefts bytea[] := '{}';
  v_start bigint := p_start;
  v_size bigint := p_size;
  i integer;
begin
  -- MTH(D[start : start + size]) (RFC 9162 2.1.1). The left part of every split is a complete,
  -- aligned subtree (stored); only the right edge is split further.
  if p_size < 1 then
    return sha256(''::bytea);
  end if;
  while v_size & (v_size - 1) <> 0 loop
    v_k := runproof_private.log_largest_power_below(v_size);
    v_lefts := v_lefts || runproof_private.log_node(p_tenant_id, runproof_private.log_floor_log2(v_k), v_start / v_k);
    v_start := v_start + v_k;
    v_size := v_size - v_k;
  end loop;
  v_right := runproof_private.log_node(p_tenant_id, runproof_private.log_floor_log2(v_size), v_start / v_size);
  for i in reverse coalesce(array_length(v_lefts, 1), 0) .. 1 loop
    v_right := runproof_private.log_node_hash(v_lefts[i], v_right);
  end loop;
  return v_right;
end
$$;
comment on function runproof_private.log_subtree(uuid, bigint, bigint) is
  'The RFC 9162 hash of leaves start .. start + size - 1 of a tenant''s log (start aligned as in the RFC''s recursion), from O(log n) stored nodes.';

create or replace function runproof_private.log_size(p_tenant_id uuid) returns bigint
  language sql stable
  set search_path = pg_catalog
  as $$
    select coalesce((select l.leaf_index + 1 from runproof.log_leaves l where l.tenant_id = p_tenant_id
                      order by l.leaf_index desc limit 1), 0)
  $$;
comment on function runproof_private.log_size(uuid) is 'How many leaves a tenant''s log holds.';

create or replace function runproof_private.log_root(p_tenant_id uuid, p_size bigint) returns bytea
  language sql stable
  set search_path = pg_catalog
  as $$ select runproof_private.log_subtree(p_tenant_id, 0, p_size) $$;
comment on function runproof_private.log_root(uuid, bigint) is 'The RFC 9162 root of the first size leaves of a tenant''s log (sha256 of nothing for size 0).';

create or replace function runproof_private.log_append(p_tenant_id uuid, p_run_id uuid, p_leaf bytea) returns bigint
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_index bigint;
  v_hash bytea := sha256('\x00'::bytea || p_leaf);
  v_i bigint;
  v_level integer := 0;
  v_sibling bytea;
begin
  -- Appends to one tenant's log are serialized by a transaction lock on the tenant (class 1262,
  -- RunProof's log); the next index is read after the lock, from the committed log.
  perform pg_advisory_xact_lock(1262, hashtext(p_tenant_id::text));
  insert into runproof.log_leaves (tenant_id, leaf_index, run_id, leaf, leaf_hash)
    select p_tenant_id, coalesce((select l.leaf_index + 1 from runproof.log_leaves l where l.tenant_id = p_tenant_id
                                   order by l.leaf_index desc limit 1), 0), p_run_id, p_leaf, v_hash
    returning leaf_index into v_index;
  -- The subtrees this leaf completes: one per trailing 1 bit of its index.
  v_i := v_index;
  while v_i & 1 = 1 loop
    if v_level = 0 then
      select l.leaf_hash into v_sibling from runproof.log_leaves l where l.tenant_id = p_tenant_id and l.leaf_index = v_i - 1;
    else
      select n.hash into v_sibling from runproof_private.log_nodes n
       where n.tenant_id = p_tenant_id and n.level = v_level and n.node_index = v_i - 1;
    end if;
    v_hash := sha256('\x01'::bytea || v_sibling || v_hash);
    v_level := v_level + 1;
    v_i := v_i >> 1;
    insert into runproof_private.log_nodes (tenant_id, level, node_index, hash) values (p_tenant_id, v_level, v_i, v_hash);
  end loop;
  return v_index;
end
$$;
comment on function runproof_private.log_append(uuid, uuid, bytea) is
  'Appends a leaf to a tenant''s log (serialized per tenant) and stores the subtrees it completes: on average one index lookup and two inserts. Returns the leaf index.';

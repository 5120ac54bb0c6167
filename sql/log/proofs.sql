-- Inclusion and consistency proofs of a tenant's log (RFC 9162 sections 2.1.3 and 2.1.4), from
-- O(log n) stored nodes, and a run's place in its log with its proof to the latest checkpoint.
-- A tenant gets proofs of its own log only (request_tenant).

create or replace function runproof_private.log_inclusion_path(p_tenant_id uuid, p_index bigint, p_size bigint) returns bytea[]
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_path bytea[] := '{}';
  v_m bigint := p_index;
  v_start bigint := 0;
  v_n bigint := p_size;
  v_k bigint;
begin
  if p_index < 0 or p_index >= p_size then
    raise exception 'leaf % is not in a tree of size %', p_index, p_size
      using errcode = 'RPVAL', hint = 'a leaf index is from 0 to tree_size - 1';
  end if;
  -- PATH(m, D[n]) top-down; RFC 9162 lists it leaf upwards, so it is reversed at the end.
  while v_n > 1 loop
    v_k := runproof_private.log_largest_power_below(v_n);
    if v_m < v_k then
      v_path := v_path || runproof_private.log_subtree(p_tenant_id, v_start + v_k, v_n - v_k);
      v_n := v_k;
    else
      v_path := v_path || runproof_private.log_subtree(p_tenant_id, v_start, v_k);
      v_m := v_m - v_k;
      v_start := v_start + v_k;
      v_n := v_n - v_k;
    end if;
  end loop;
  return array(select v_path[i] from generate_subscripts(v_path, 1) i order by i desc);
end
$$;
comment on function runproof_private.log_inclusion_path(uuid, bigint, bigint) is
  'The RFC 9162 inclusion proof of leaf index in the first size leaves of a tenant''s log, leaf upwards.';

create or replace function runproof_private.log_consistency_path(p_tenant_id uuid, p_from bigint, p_to bigint) returns bytea[]
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_path bytea[] := '{}';
  v_m bigint := p_from;
  v_start bigint := 0;
  v_n bigint := p_to;
  v_b boolean := true;
  v_k bigint;
begin
  if p_from < 0 or p_from > p_to then
    raise exception 'no consistency proof from size % to size %', p_from, p_to
      using errcode = 'RPVAL', hint = 'from_size must be from 0 to to_size';
  end if;
  if p_from = 0 or p_from = p_to then
    return '{}';
  end if;
  -- SUBPROOF(m, D[n], true) top-down, reversed at the end.
  loop
    if v_m = v_n then
      if not v_b then
        v_path := v_path || runproof_private.log_subtree(p_tenant_id, v_start, v_n);
      end if;
      exit;
    end if;
    v_k := runproof_private.log_largest_power_below(v_n);
    if v_m <= v_k then
      v_path := v_path || runproof_private.log_subtree(p_tenant_id, v_start + v_k, v_n - v_k);
      v_n := v_k;
    else
      v_path := v_path || runproof_private.log_subtree(p_tenant_id, v_start, v_k);
      v_m := v_m - v_k;
      v_start := v_start + v_k;
      v_n := v_n - v_k;
      v_b := false;
    end if;
  end loop;
  return array(select v_path[i] from generate_subscripts(v_path, 1) i order by i desc);
end
$$;
comment on function runproof_private.log_consistency_path(uuid, bigint, bigint) is
  'The RFC 9162 consistency proof between the first from and the first to leaves of a tenant''s log.';

create or replace function runproof_private.hex_array(p bytea[]) returns text[]
  language sql immutable strict parallel safe
  as $$ select coalesce(array(select encode(x, 'hex') from unnest(p) with ordinality u(x, o) order by o), '{}') $$;
comment on function runproof_private.hex_array(bytea[]) is 'Each hash as lower-case hex, in order.';

create or replace function runproof.log_inclusion_proof(tenant_id uuid, leaf_index bigint, tree_size bigint) returns text[]
  language plpgsql stable security definer
  set search_path = pg_catalog
  as $$
declare
  v_tenant uuid := runproof_private.request_tenant(log_inclusion_proof.tenant_id);
begin
  if log_inclusion_proof.tree_size > runproof_private.log_size(v_tenant) then
    raise exception 'the log of tenant % has fewer than % leaves', v_tenant, log_inclusion_proof.tree_size
      using errcode = 'RPVAL', hint = 'ask for a size up to the latest checkpoint''s';
  end if;
  return runproof_private.hex_array(runproof_private.log_inclusion_path(v_tenant, log_inclusion_proof.leaf_index, log_inclusion_proof.tree_size));
end
$$;
comment on function runproof.log_inclusion_proof(uuid, bigint, bigint) is
  'The RFC 9162 inclusion proof (hex hashes, leaf upwards) of a leaf of the tenant''s log in its first tree_size leaves.';

create or replace function runproof.log_consistency_proof(tenant_id uuid, from_size bigint, to_size bigint) returns text[]
  language plpgsql stable security definer
  set search_path = pg_catalog
  as $$
declare
  v_tenant uuid := runproof_private.request_tenant(log_consistency_proof.tenant_id);
begin
  if log_consistency_proof.to_size > runproof_private.log_size(v_tenant) then
    raise exception 'the log of tenant % has fewer than % leaves', v_tenant, log_consistency_proof.to_size
      using errcode = 'RPVAL', hint = 'ask for sizes of checkpoints (runproof checkpoint list)';
  end if;
  return runproof_private.hex_array(runproof_private.log_consistency_path(v_tenant, log_consistency_proof.from_size, log_consistency_proof.to_size));
end
$$;
comment on function runproof.log_consistency_proof(uuid, bigint, bigint) is
  'The RFC 9162 consistency proof (hex hashes) between two sizes of the tenant''s log, e.g. two checkpoints.';

create or replace function runproof_private.run_log_proof(p_tenant_id uuid, p_run_id uuid,
  out leaf_index bigint, out checkpoint_size bigint, out inclusion_proof text[], out checkpoint text)
  language plpgsql stable security definer
  set search_path = pg_catalog
  as $$
declare
  v_tenant uuid := runproof_private.request_tenant(p_tenant_id);
begin
  select l.leaf_index into leaf_index from runproof.log_leaves l where l.tenant_id = v_tenant and l.run_id = p_run_id;
  select c.tree_size, c.note into checkpoint_size, checkpoint from runproof.log_checkpoints c
   where c.tenant_id = v_tenant order by c.tree_size desc limit 1;
  if leaf_index is not null and checkpoint_size > leaf_index then
    inclusion_proof := runproof_private.hex_array(runproof_private.log_inclusion_path(v_tenant, leaf_index, checkpoint_size));
  end if;
end
$$;
comment on function runproof_private.run_log_proof(uuid, uuid) is
  'A run''s leaf index in its tenant''s log, the latest checkpoint (size and signed note) and the run''s inclusion proof in it (NULL while the run is not checkpointed).';

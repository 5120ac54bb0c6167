-- Verification of the tenants' logs against checkpoints kept outside the database (the anchors):
-- each tenant's tree is recomputed from its runs and compared with every checkpoint given, so a
-- consistent rewrite of the database (hashes, seals, log and stored checkpoints alike) is found.

create or replace function runproof_private.log_roots(p_hashes bytea[], p_sizes bigint[]) returns bytea[]
  language plpgsql immutable
  set search_path = pg_catalog
  as $$
declare
  v_stack bytea[] := '{}';
  v_top integer := 0;
  v_roots bytea[] := '{}';
  v_sizes bigint[] := array(select s from unnest(p_sizes) s order by s);
  v_j integer := 1;
  v_c bytea;
  v_m bigint;
  v_r bytea;
  v_n integer := coalesce(array_length(p_hashes, 1), 0);
  i integer;
  t integer;
begin
  -- One pass over the leaves, keeping the complete subtrees of the right edge (RFC 9162 2.1.1):
  -- the root of the first i leaves folds that stack from the right.
  while v_j <= coalesce(array_length(v_sizes, 1), 0) and v_sizes[v_j] <= 0 loop
    v_roots := v_roots || sha256(''::bytea);
    v_j := v_j + 1;
  end loop;
  for i in 1 .. v_n loop
    v_c := p_hashes[i];
    v_m := i;
    while v_m & 1 = 0 loop
      v_c := sha256('\x01'::bytea || v_stack[v_top] || v_c);
      v_top := v_top - 1;
      v_m := v_m >> 1;
    end loop;
    v_top := v_top + 1;
    v_stack[v_top] := v_c;
    while v_j <= coalesce(array_length(v_sizes, 1), 0) and v_sizes[v_j] = i loop
      v_r := v_stack[v_top];
      for t in reverse v_top - 1 .. 1 loop
        v_r := sha256('\x01'::bytea || v_stack[t] || v_r);
      end loop;
      v_roots := v_roots || v_r;
      v_j := v_j + 1;
    end loop;
  end loop;
  return v_roots;
end
$$;
comment on function runproof_private.log_roots(bytea[], bigint[]) is
  'The RFC 9162 roots of the first s leaf hashes for each size s asked (in ascending size order; sizes beyond the leaves are left out), in one pass.';

create or replace function runproof.verify_against(checkpoints text[], leaves jsonb default null) returns table (
  tenant_id uuid, status text, first_bad_leaf bigint, run_id uuid, tree_size bigint, reason text)
  -- volatile: it fills a temporary table with the checkpoints.
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_tenant uuid;
  v_ext record;
  v_hashes bytea[];
  v_stored bytea[];
  v_runs uuid[];
  v_present boolean[];
  v_indexes bigint[];
  v_n bigint;
  v_anchored bigint;
  v_sizes bigint[];
  v_roots bytea[];
  v_exp bytea[];
  v_mirror bytea[];
  v_i bigint;
  v_k integer;
  v_s0 bigint;
  v_problems integer;
  v_x record;
begin
  -- The checkpoints given: origin (ending in the tenant id), size, root. Signatures are checked by
  -- the caller (runproof verify-all --against verifies each note with the log's public key).
  create temporary table if not exists pg_temp.verify_against_input (tenant_id uuid, tree_size bigint, root_hash bytea, source text) on commit drop;
  truncate pg_temp.verify_against_input;
  insert into pg_temp.verify_against_input
    select substring(split_part(c, E'\n', 1) from '([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$')::uuid,
           split_part(c, E'\n', 2)::bigint, decode(split_part(c, E'\n', 3), 'base64'), 'given'
      from unnest(coalesce(checkpoints, '{}')) c;
  insert into pg_temp.verify_against_input
    select c.tenant_id, c.tree_size, c.root_hash, 'stored' from runproof.log_checkpoints c;

  for v_tenant in
    select x.t from (select i.tenant_id as t from pg_temp.verify_against_input i where i.source = 'given'
                     union select l.tenant_id from runproof.log_leaves l
                     union select r.tenant_id from runproof.runs r where r.seal is not null) x
     where x.t is not null order by 1
  loop
    v_problems := 0;
    -- A fork: two checkpoints of one size with different roots (given, or given and stored).
    for v_x in select i.tree_size, count(distinct i.root_hash) as roots from pg_temp.verify_against_input i
                where i.tenant_id = v_tenant group by i.tree_size having count(distinct i.root_hash) > 1 order by 1 loop
      tenant_id := v_tenant; status := 'FORK'; tree_size := v_x.tree_size; first_bad_leaf := null; run_id := null;
      reason := format('%s checkpoints of size %s with different roots: the log was forked', v_x.roots, v_x.tree_size);
      v_problems := v_problems + 1;
      return next;
    end loop;

    -- The tree recomputed from the runs, in log order; the stored leaves beside it.
    select array_agg(coalesce(runproof_private.log_leaf_hash(runproof_private.log_leaf(r.tenant_id, r.id, r.root_hash, r.status, r.finished_at)), l.leaf_hash) order by l.leaf_index),
           array_agg(l.leaf_hash order by l.leaf_index), array_agg(l.run_id order by l.leaf_index),
           array_agg(r.id is not null order by l.leaf_index), array_agg(l.leaf_index order by l.leaf_index)
      into v_hashes, v_stored, v_runs, v_present, v_indexes
      from runproof.log_leaves l
      left join runproof.runs r on r.tenant_id = l.tenant_id and r.id = l.run_id and r.seal is not null
     where l.tenant_id = v_tenant;
    v_n := coalesce(array_length(v_hashes, 1), 0);
    -- Leaves the log lost without renumbering, runs deleted under their leaves, runs rewritten under them.
    select min(o - 1) into v_i from unnest(v_indexes) with ordinality u(ix, o) where ix <> o - 1;
    if v_i is not null then
      tenant_id := v_tenant; status := 'DELETED'; first_bad_leaf := v_i; run_id := null; tree_size := null;
      reason := format('leaf %s is missing from the log', v_i);
      v_problems := v_problems + 1;
      return next;
    end if;
    select min(o - 1) into v_i from unnest(v_present) with ordinality u(p, o) where not p;
    if v_i is not null then
      tenant_id := v_tenant; status := 'DELETED'; first_bad_leaf := v_i; run_id := v_runs[v_i + 1]; tree_size := null;
      reason := format('leaf %s logs run %s, which no longer exists (or is no longer sealed)', v_i, v_runs[v_i + 1]);
      v_problems := v_problems + 1;
      return next;
    end if;
    select min(o - 1) into v_i from unnest(v_hashes, v_stored) with ordinality u(h, s, o) where h <> s;
    if v_i is not null then
      tenant_id := v_tenant; status := 'REWRITTEN'; first_bad_leaf := v_i; run_id := v_runs[v_i + 1]; tree_size := null;
      reason := format('run %s (leaf %s) is not the run that was logged: its root, status or finished_at changed', v_runs[v_i + 1], v_i);
      v_problems := v_problems + 1;
      return next;
    end if;
    -- Sealed runs the log does not hold: the seal always appends, so they were inserted around it.
    for v_x in select r.id from runproof.runs r where r.tenant_id = v_tenant and r.seal is not null
                  and not exists (select 1 from runproof.log_leaves l where l.tenant_id = r.tenant_id and l.run_id = r.id)
                order by r.finished_at, r.id loop
      tenant_id := v_tenant; status := 'INSERTED'; first_bad_leaf := null; run_id := v_x.id; tree_size := null;
      reason := format('run %s is sealed but not in its tenant''s log', v_x.id);
      v_problems := v_problems + 1;
      return next;
    end loop;

    -- Against the checkpoints given: rolled back below one, or a different tree at its size.
    select max(i.tree_size) into v_anchored from pg_temp.verify_against_input i where i.tenant_id = v_tenant and i.source = 'given';
    v_anchored := coalesce(v_anchored, 0);
    if v_n < v_anchored then
      tenant_id := v_tenant; status := 'ROLLED_BACK'; first_bad_leaf := v_n; run_id := null; tree_size := v_anchored;
      reason := format('the log holds %s leaves but a checkpoint of size %s was anchored', v_n, v_anchored);
      v_problems := v_problems + 1;
      return next;
    end if;
    select array_agg(d.tree_size order by d.tree_size), array_agg(d.root_hash order by d.tree_size) into v_sizes, v_exp
      from (select distinct on (i.tree_size) i.tree_size, i.root_hash from pg_temp.verify_against_input i
             where i.tenant_id = v_tenant and i.source = 'given' and i.tree_size <= v_n order by i.tree_size, i.root_hash) d;
    v_roots := runproof_private.log_roots(v_hashes, v_sizes);
    v_s0 := 0;
    for v_k in 1 .. coalesce(array_length(v_sizes, 1), 0) loop
      if v_roots[v_k] = v_exp[v_k] then
        v_s0 := v_sizes[v_k];
        continue;
      end if;
      -- The first checkpoint the recomputed tree disagrees with. Locate the first bad leaf with the
      -- anchored leaf hashes when given, else say between which checkpoints it is.
      tenant_id := v_tenant; tree_size := v_sizes[v_k]; run_id := null;
      v_mirror := case when leaves ? v_tenant::text
                       then array(select decode(h, 'hex') from jsonb_array_elements_text(leaves -> v_tenant::text) with ordinality e(h, o) order by o) end;
      if v_mirror is not null and array_length(v_mirror, 1) >= v_sizes[v_k] then
        select min(o - 1) into v_i from unnest(v_hashes[1:v_sizes[v_k]], v_mirror[1:v_sizes[v_k]]) with ordinality u(h, m, o) where h is distinct from m;
        first_bad_leaf := v_i;
        run_id := v_runs[v_i + 1];
        if (select array_agg(h order by h) from unnest(v_hashes[1:v_sizes[v_k]]) h)
           = (select array_agg(h order by h) from unnest(v_mirror[1:v_sizes[v_k]]) h) then
          status := 'REORDERED';
          reason := format('leaf %s (run %s) is at another place in the anchored log: the log was reordered', v_i, run_id);
        elsif v_hashes[v_i + 2] is not distinct from v_mirror[v_i + 1] and not v_hashes[v_i + 1] = any (v_mirror[1:v_sizes[v_k]]) then
          status := 'INSERTED';
          reason := format('leaf %s (run %s) was not in the anchored log: a run was inserted', v_i, run_id);
        elsif v_hashes[v_i + 1] is not distinct from v_mirror[v_i + 2] and not v_mirror[v_i + 1] = any (v_hashes) then
          status := 'DELETED'; run_id := null;
          reason := format('anchored leaf %s is missing from the log: a run was deleted', v_i);
        elsif v_hashes[v_i + 1] = any (v_mirror[1:v_sizes[v_k]]) then
          status := 'REORDERED';
          reason := format('leaf %s (run %s) is at another place in the anchored log: the log was reordered', v_i, run_id);
        else
          status := 'REWRITTEN';
          reason := format('leaf %s (run %s) differs from the anchored leaf: the run was rewritten', v_i, run_id);
        end if;
      else
        status := 'ROOT_MISMATCH'; first_bad_leaf := v_s0;
        reason := format('the tree recomputed from the runs has a different root at size %s than the anchored checkpoint: a leaf from %s to %s was rewritten, deleted, inserted or moved',
                         v_sizes[v_k], v_s0, v_sizes[v_k] - 1);
      end if;
      v_problems := v_problems + 1;
      return next;
      exit;
    end loop;

    if v_n > v_anchored then
      tenant_id := v_tenant; status := 'NOT_CHECKPOINTED'; first_bad_leaf := v_anchored; run_id := null; tree_size := v_n;
      reason := format('%s run(s) sealed after the last anchored checkpoint (leaves %s to %s) are not checkpointed yet', v_n - v_anchored, v_anchored, v_n - 1);
      return next;
    end if;
    if v_problems = 0 and v_anchored > 0 then
      tenant_id := v_tenant; status := 'CONSISTENT'; first_bad_leaf := null; run_id := null; tree_size := v_anchored;
      reason := format('the tree recomputed from the runs matches every checkpoint given, up to size %s', v_anchored);
      return next;
    end if;
  end loop;
end
$$;
comment on function runproof.verify_against(text[], jsonb) is
  'Verifies each tenant''s log against checkpoints kept outside the database (their note texts; signatures checked by the caller) and optionally the anchored leaf hashes ({tenant_id: [hex, ...]}): recomputes the tree from the runs and reports, each with its first bad leaf, FORK, DELETED, INSERTED, REWRITTEN, REORDERED, ROLLED_BACK, ROOT_MISMATCH (without leaf hashes), NOT_CHECKPOINTED (sealed after the last checkpoint) and CONSISTENT.';

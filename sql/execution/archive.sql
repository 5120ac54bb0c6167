-- Archival marks a sealed trace archived, once. The trace stays in every proof.

create or replace function runproof.archive_trace(trace_id uuid, tenant_id uuid default null) returns runproof.traces
  language plpgsql volatile security definer
  set search_path = pg_catalog
  as $$
#variable_conflict use_column
declare
  v_tenant uuid := runproof_private.request_tenant(archive_trace.tenant_id);
  v runproof.traces;
begin
  select t.* into v from runproof.traces t where t.tenant_id = v_tenant and t.id = archive_trace.trace_id for update;
  if not found then
    raise exception 'trace % not found for tenant %', archive_trace.trace_id, v_tenant using errcode = 'RPNFD', hint = 'check the trace id';
  end if;
  if v.status = 'running' then
    raise exception 'trace % is still running', v.id using errcode = 'RPSTS', hint = 'only a sealed trace can be archived';
  end if;
  if v.archived_at is not null then
    raise exception 'trace % was already archived at %', v.id, v.archived_at using errcode = 'RPSTS', hint = 'archival happens once';
  end if;
  update runproof.traces t set archived_at = now() where t.tenant_id = v_tenant and t.id = v.id returning * into v;
  return v;
end
$$;
comment on function runproof.archive_trace(uuid, uuid) is 'Archives a sealed trace (sets archived_at once). The trace stays in every proof.';

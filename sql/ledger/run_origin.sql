-- Every run says which system created it. origin_system_id is NOT NULL with no default (the
-- table); this guard turns each way of getting it wrong into its own SQLSTATE and a HINT.

create or replace function runproof_private.tg_runs__origin_check() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v text := new.origin_system_id;
  v_hint constant text := 'pass origin_system_id: the identifier of the system creating the run, e.g. ''runproof-cli'', ''graphql'' or your service''s name';
begin
  if v is null then
    raise exception 'null value in column "origin_system_id" of relation "runs" violates not-null constraint'
      using errcode = 'not_null_violation', schema = 'runproof', table = 'runs', column = 'origin_system_id',
            detail = 'origin_system_id has no default on purpose: every run must say which system created it.', hint = v_hint;
  elsif runproof_private.is_blank(v) then
    raise exception 'origin_system_id must not be blank'
      using errcode = 'RPOBL', schema = 'runproof', table = 'runs', column = 'origin_system_id', hint = v_hint;
  elsif length(v) > 128 then
    raise exception 'origin_system_id is % characters long; at most 128 are allowed', length(v)
      using errcode = 'RPOLN', schema = 'runproof', table = 'runs', column = 'origin_system_id',
            hint = 'use a short identifier of the system, not a description';
  elsif v ~ '^[\s\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]|[\s\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]$'
        or runproof_private.has_invisible_chars(v) then
    raise exception 'origin_system_id % has leading or trailing whitespace, or control or invisible characters', runproof_private.visible(v)
      using errcode = 'RPOCH', schema = 'runproof', table = 'runs', column = 'origin_system_id',
            hint = 'trim the value and remove control characters';
  elsif lower(v) = any (runproof_private.reserved_origin_system_ids()) then
    raise exception 'origin_system_id % is reserved and cannot be used for new runs', quote_literal(v)
      using errcode = 'RPORS', schema = 'runproof', table = 'runs', column = 'origin_system_id',
            detail = 'reserved values: ' || array_to_string(runproof_private.reserved_origin_system_ids(), ', '),
            hint = v_hint;
  end if;
  return new;
end
$$;
comment on function runproof_private.tg_runs__origin_check() is
  'Trigger: rejects a missing, blank, over-long, untrimmed or reserved origin_system_id with a message and a HINT saying what to pass.';

create or replace trigger tg_runs__origin_check before insert on runproof.runs
  for each row execute function runproof_private.tg_runs__origin_check();
-- ENABLE ALWAYS: session_replication_role = replica does not switch the guard off.
alter table runproof.runs enable always trigger tg_runs__origin_check;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('runs', 'tg_runs__origin_check', 'INSERT with a NULL (23502), blank (RPOBL), over 128 characters (RPOLN), white space at either end (ASCII or Unicode), control or invisible characters (RPOCH) or reserved (RPORS) origin_system_id', 'INSERT with a real system identifier')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;

-- Step payloads (input, output, error) live apart from the chain, committed to by salted hashes
-- inside each step (docs/proof-format.md section 5). A payload is never changed; it is removed only
-- with its erasure recorded (runproof.erase_payloads), and erasure records are append-only.

-- enable_seqscan = off: see tg_policy_decisions__check (sql/ledger/policy_decisions.sql); the
-- look-up is by the step's primary key.
create or replace function runproof_private.tg_step_payloads__check() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  set enable_seqscan = off
  as $$
declare
  v_step record;
begin
  -- Foreign keys do not fire in replica mode; this trigger always does.
  select s.run_id, s.input_commitment, s.output_commitment, s.error_commitment into v_step
    from runproof.trace_steps s
   where s.tenant_id = new.tenant_id and s.trace_id = new.trace_id and s.step_index = new.step_index;
  if not found or v_step.run_id <> new.run_id then
    raise exception 'step % of trace % not found for run %', new.step_index, new.trace_id, new.run_id
      using errcode = 'RPNFD', hint = 'payloads are recorded with their step by runproof_private.record_step';
  end if;
  if runproof_private.payload_commitment('input', new.input_salt, new.input::text) is distinct from v_step.input_commitment
     or runproof_private.payload_commitment('output', new.output_salt, new.output::text) is distinct from v_step.output_commitment
     or runproof_private.payload_commitment('error', new.error_salt, new.error) is distinct from v_step.error_commitment then
    raise exception 'the payloads of step % of trace % do not match the step''s commitments', new.step_index, new.trace_id
      using errcode = 'RPCHN', hint = 'payloads are recorded with their step by runproof_private.record_step';
  end if;
  return new;
end
$$;
comment on function runproof_private.tg_step_payloads__check() is
  'Trigger: a step''s payloads belong to an existing step of their run and match the salted commitments the step''s hash covers (checked even in replica mode).';

create or replace function runproof_private.tg_step_payloads__guard() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_key text := format('tenant_id=%s, trace_id=%s, step_index=%s', old.tenant_id, old.trace_id, old.step_index);
begin
  if tg_op = 'DELETE' and exists (select 1 from runproof.payload_erasure_steps e
                                   where e.tenant_id = old.tenant_id and e.trace_id = old.trace_id and e.step_index = old.step_index) then
    return old;
  end if;
  perform runproof_private.raise_immutable(tg_op, 'step_payloads', v_key,
    case tg_op when 'DELETE' then 'a payload is removed only together with the record of its erasure'
               else 'a payload never changes' end,
    'erase payloads with runproof.erase_payloads, which records who erased what, when and why');
  return null;
end
$$;
comment on function runproof_private.tg_step_payloads__guard() is
  'Trigger: a payload row is never updated, and deleted only when its erasure is recorded in runproof.payload_erasure_steps (runproof.erase_payloads does both).';

create or replace function runproof_private.tg_payload_erasure_steps__check() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  if not exists (select 1 from runproof.payload_erasures e where e.tenant_id = new.tenant_id and e.id = new.erasure_id)
     or not exists (select 1 from runproof.trace_steps s where s.tenant_id = new.tenant_id and s.trace_id = new.trace_id
                     and s.step_index = new.step_index and s.run_id = new.run_id) then
    raise exception 'erasure % or step % of trace % not found for tenant %', new.erasure_id, new.step_index, new.trace_id, new.tenant_id
      using errcode = 'RPNFD', hint = 'erasures are recorded by runproof.erase_payloads';
  end if;
  return new;
end
$$;
comment on function runproof_private.tg_payload_erasure_steps__check() is
  'Trigger: an erased step belongs to its erasure''s tenant and exists (checked even in replica mode).';

create or replace trigger tg_step_payloads__check before insert on runproof.step_payloads
  for each row execute function runproof_private.tg_step_payloads__check();
create or replace trigger tg_step_payloads__guard before update or delete on runproof.step_payloads
  for each row execute function runproof_private.tg_step_payloads__guard();
create or replace trigger tg_step_payloads__no_truncate before truncate on runproof.step_payloads
  for each statement execute function runproof_private.tg__no_truncate();
create or replace trigger tg_payload_erasures__append_only before update or delete on runproof.payload_erasures
  for each row execute function runproof_private.tg__append_only('tenant_id', 'id');
create or replace trigger tg_payload_erasures__no_truncate before truncate on runproof.payload_erasures
  for each statement execute function runproof_private.tg__no_truncate();
create or replace trigger tg_payload_erasure_steps__check before insert on runproof.payload_erasure_steps
  for each row execute function runproof_private.tg_payload_erasure_steps__check();
create or replace trigger tg_payload_erasure_steps__append_only before update or delete on runproof.payload_erasure_steps
  for each row execute function runproof_private.tg__append_only('tenant_id', 'trace_id', 'step_index');
create or replace trigger tg_payload_erasure_steps__no_truncate before truncate on runproof.payload_erasure_steps
  for each statement execute function runproof_private.tg__no_truncate();
alter table runproof.step_payloads enable always trigger tg_step_payloads__check;
alter table runproof.step_payloads enable always trigger tg_step_payloads__guard;
alter table runproof.step_payloads enable always trigger tg_step_payloads__no_truncate;
alter table runproof.payload_erasures enable always trigger tg_payload_erasures__append_only;
alter table runproof.payload_erasures enable always trigger tg_payload_erasures__no_truncate;
alter table runproof.payload_erasure_steps enable always trigger tg_payload_erasure_steps__check;
alter table runproof.payload_erasure_steps enable always trigger tg_payload_erasure_steps__append_only;
alter table runproof.payload_erasure_steps enable always trigger tg_payload_erasure_steps__no_truncate;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('step_payloads', 'tg_step_payloads__check', 'INSERT for a missing step or another run (RPNFD), or of payloads that do not match the step''s commitments (RPCHN), even in replica mode', 'INSERT of a step''s payloads by runproof_private.record_step'),
  ('step_payloads', 'tg_step_payloads__guard', 'UPDATE; DELETE without a recorded erasure (RPIMM)', 'DELETE of payloads whose erasure is recorded (runproof.erase_payloads)'),
  ('step_payloads', 'tg_step_payloads__no_truncate', 'TRUNCATE (RPIMM)', 'nothing'),
  ('payload_erasures', 'tg_payload_erasures__append_only', 'UPDATE, DELETE (RPIMM)', 'nothing'),
  ('payload_erasures', 'tg_payload_erasures__no_truncate', 'TRUNCATE (RPIMM)', 'nothing'),
  ('payload_erasure_steps', 'tg_payload_erasure_steps__check', 'INSERT for a missing erasure or step, or another tenant''s (RPNFD), even in replica mode', 'INSERT by runproof.erase_payloads'),
  ('payload_erasure_steps', 'tg_payload_erasure_steps__append_only', 'UPDATE, DELETE (RPIMM)', 'nothing'),
  ('payload_erasure_steps', 'tg_payload_erasure_steps__no_truncate', 'TRUNCATE (RPIMM)', 'nothing')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;

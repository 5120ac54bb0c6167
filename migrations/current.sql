-- The change being developed: edit sql/, include each changed file here (--!include <path under sql/>),
-- add table changes as plain SQL, and commit it with `npm run gm -- commit -m "..."` (docs/CONVENTIONS.md).

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

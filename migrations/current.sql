-- The change being developed: edit sql/, include each changed file here (--!include <path under sql/>),
-- add table changes as plain SQL, and commit it with `npm run gm -- commit -m "..."` (docs/CONVENTIONS.md).

-- Issue 16: hints name the CLI as it is called in a clone, `npx runproof ...` (hint texts only).
--!include common/request.sql
--!include api/tenants.sql
--!include api/agents.sql
--!include api/api_keys.sql
--!include api/erasure.sql
--!include execution/enqueue.sql
--!include execution/cancel.sql

--!include api/access.sql

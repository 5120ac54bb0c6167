--! Previous: sha1:bba737daf4d0af70209afc89b7c441719dbd6e76
--! Hash: sha1:a9855519390e832d3da07b51f8d814d2468488a7
--! Message: no public execute

-- Functions are executable by PUBLIC unless revoked: a per-schema ALTER DEFAULT PRIVILEGES can
-- only add privileges, so 000001's attempt to withhold them did nothing. Revoke it for every
-- function RunProof has and will create; the roles that need a function have their own grant.
-- Idempotent: graphile-migrate re-runs current.sql on every save in `watch` mode.

alter default privileges revoke execute on functions from public;
revoke execute on all functions in schema runproof, runproof_private from public;
-- The tenant role's own grants (000001-000003) are explicit and stay; so is authenticate's.

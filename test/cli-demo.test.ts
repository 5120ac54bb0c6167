// runproof demo, end to end on a real database: the narrated tour must reach every act.
import test from "ava";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { runCli } from "./helpers/cli.ts";
import { createTestDatabase } from "./helpers/db.ts";

test("demo: a verified run, a refused UPDATE, a superuser's edit caught in SQL and offline", async (t) => {
  const db = await createTestDatabase("cli-demo");
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "runproof-cli-demo-"));
  t.teardown(async () => {
    await db.drop();
    await fs.rm(dir, { recursive: true, force: true });
  });
  const r = await runCli(["demo", "--pause-ms", "0", "--out-dir", dir], {
    env: { DATABASE_URL: db.url },
    timeoutMs: 120_000,
  });
  t.is(r.code, 0, r.stdout + r.stderr);
  const o = r.stdout;
  // Acts in order.
  const acts = [
    /1\. A tenant and an agent/,
    /✓ step\s+0\s+plan\s+0\s+http_call\s+succeeded/,
    /✓ step\s+5\s+plan\s+5\s+noop\s+succeeded/,
    /run [0-9a-f-]{36} succeeded/,
    /│ verification status\s+│ VERIFIED/,
    /offline check of that file .*: VERIFIED/,
    /ERROR RPIMM: S6_IMMUTABILITY_VIOLATION: UPDATE on runproof\.step_payloads/,
    /alter table runproof\.step_payloads disable trigger tg_step_payloads__guard/,
    /update runproof\.step_payloads set output = /,
    /alter table runproof\.step_payloads enable always trigger tg_step_payloads__guard/,
    /│ verification status\s+│ TAMPERED/,
    /│ first bad step\s+│ 1\s/,
    /offline: TAMPERED at attempt 1, step 1/,
    /reason: attempt 1: step 1: its output payload does not match the commitment its hash covers/,
  ];
  let at = 0;
  for (const re of acts) {
    const m = re.exec(o.slice(at));
    t.truthy(m, `${re} after position ${at}`);
    if (m) at += m.index + m[0].length;
  }
  const runId = o.match(/run ([0-9a-f-]{36}) succeeded/)![1];
  // The database agrees, the guards are all back to ENABLE ALWAYS, and the bundles say the same.
  const {
    rows: [tenant],
  } = await db.pool.query(`select tenant_id from runproof.runs where id = $1`, [runId]);
  const {
    rows: [p],
  } = await db.pool.query(`select * from runproof.run_proof($1, $2)`, [tenant.tenant_id, runId]);
  t.like(p, {
    verification_status: "TAMPERED",
    first_bad_step_index: 1,
    step_count: 6,
    reason: "attempt 1: step 1: its output payload does not match the commitment its hash covers",
  });
  const { rows: guards } = await db.pool.query(`select trigger_name, enabled from runproof_private.guards
    where enabled in ('DISABLED', 'MISSING') or (trigger_name not like 'foreign key %' and enabled <> 'always')`);
  t.deepEqual(guards, []);
  const before = await runCli(["proof", "verify", path.join(dir, "bundle-before.json")], {
    env: { DATABASE_URL: undefined, RUNPROOF_PG_PORT: "bogus" },
  });
  t.is(before.code, 0);
  const after = await runCli(["proof", "verify", path.join(dir, "bundle-after.json")], {
    env: { DATABASE_URL: undefined, RUNPROOF_PG_PORT: "bogus" },
  });
  t.is(after.code, 3);
  const { rows: requests } = await db.pool.query(
    `select count(*)::int n from runproof.trace_steps where run_id = $1 and skill = 'http_call' and status = 'succeeded'`,
    [runId],
  );
  t.is(requests[0].n, 2, "both http_call steps reached the local service");
});

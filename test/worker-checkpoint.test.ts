// The worker's checkpoint task: scheduled in graphile-worker's crontab (RUNPROOF_CHECKPOINT_SCHEDULE,
// every minute by default) and, when it runs, it signs the logs that grew and anchors them.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import test from "ava";
import { generateKeyPem } from "../src/lib/checkpoints.ts";
import { verifyCheckpoint } from "../src/lib/offline-checkpoint.ts";
import { until } from "./helpers/cli.ts";
import { createTestDatabase } from "./helpers/db.ts";
import { completedRun, createTenant } from "./helpers/ledger.ts";
import { startTestWorker } from "./helpers/worker.ts";

test("the checkpoint task is in the crontab and signs and anchors the logs that grew", async (t) => {
  const db = await createTestDatabase("worker-checkpoint");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runproof-worker-cp-"));
  const worker = await startTestWorker(db.url, {
    env: {
      RUNPROOF_CHECKPOINT_KEY: generateKeyPem(),
      RUNPROOF_CHECKPOINT_KEY_NAME: "runproof.test/worker",
      RUNPROOF_CHECKPOINT_ANCHORS: JSON.stringify([{ name: "files", kind: "directory", path: dir }]),
    },
  });
  t.teardown(async () => {
    await worker.stop();
    await db.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const f = await createTenant(db.pool);
  await completedRun(db.pool, f, { stepsPerTrace: 1 });
  await completedRun(db.pool, f, { stepsPerTrace: 1 });
  const { rows: crons } = await db.pool.query(
    `select identifier from graphile_worker._private_known_crontabs order by 1`,
  );
  t.deepEqual(
    crons.map((c) => c.identifier),
    ["checkpoint", "erase_expired_payloads"],
  );
  // What the crontab does every minute, now.
  await db.pool.query(`select graphile_worker.add_job('checkpoint')`);
  const cp = await until(
    async () =>
      (await db.pool.query(`select * from runproof.log_checkpoints where tenant_id = $1`, [f.tenantId]))
        .rows[0],
    20_000,
    "the checkpoint",
  );
  t.is(Number(cp.tree_size), 2);
  t.is(verifyCheckpoint(cp.note, cp.verifier_key).size, 2n);
  await until(
    () => fs.existsSync(path.join(dir, f.tenantId, "000000000002.checkpoint")),
    20_000,
    "the anchored file",
  );
  t.is(fs.readFileSync(path.join(dir, f.tenantId, "000000000002.checkpoint"), "utf8"), cp.note);
});

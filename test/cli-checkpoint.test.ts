// runproof checkpoint keygen|now|show|list, proof export/verify with the log, and
// verify-all --against DIR|FILE, as subprocesses.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import test from "ava";
import { cliJson, runCli } from "./helpers/cli.ts";
import { createTestDatabase } from "./helpers/db.ts";
import { completedRun, createTenant } from "./helpers/ledger.ts";

test("keygen, checkpoint now, show, list; a bundle verified offline with --key and --checkpoint; verify-all --against", async (t) => {
  const db = await createTestDatabase("cli-checkpoint");
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runproof-cli-cp-"));
  t.teardown(async () => {
    await db.drop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  const keyFile = path.join(tmp, "checkpoint.key");
  const anchors = path.join(tmp, "anchors");
  const k = await cliJson(["checkpoint", "keygen", "-o", keyFile, "--name", "runproof.test/cli"]);
  t.is(k.key_name, "runproof.test/cli");
  t.regex(k.verifier_key, /^runproof\.test\/cli\+[0-9a-f]{8}\+[A-Za-z0-9+/=]{44}$/);
  t.is(fs.statSync(keyFile).mode & 0o777, 0o600);
  t.is((await runCli(["checkpoint", "keygen", "-o", keyFile])).code, 2, "never overwrites a key");

  const env = {
    DATABASE_URL: db.url,
    RUNPROOF_CHECKPOINT_KEY_FILE: keyFile,
    RUNPROOF_CHECKPOINT_KEY_NAME: "runproof.test/cli",
    RUNPROOF_CHECKPOINT_ANCHORS: JSON.stringify([{ name: "files", kind: "directory", path: anchors }]),
  };
  const f = await createTenant(db.pool);
  const runs: string[] = [];
  for (let i = 0; i < 3; i++) runs.push((await completedRun(db.pool, f, { stepsPerTrace: 1 })).runId);
  const now = await cliJson(["checkpoint", "now"], { env });
  t.like(now, { signed: 1, anchored: 1, anchor_backlog: 0, verifier_key: k.verifier_key });
  const kept = path.join(tmp, "kept.checkpoint");
  fs.copyFileSync(path.join(anchors, f.tenantId, "000000000003.checkpoint"), kept);
  await completedRun(db.pool, f, { stepsPerTrace: 1 });
  t.like(await cliJson(["checkpoint", "now"], { env }), { signed: 1 });

  const show = await runCli(["checkpoint", "show", "-t", f.tenantId], { env });
  t.is(show.code, 0, show.stderr);
  t.regex(show.stdout, /checkpoint size\s+│\s+4\s/);
  t.true(show.stdout.includes(`verifier key: ${k.verifier_key}\n`));
  const list = await cliJson(["checkpoint", "list", "-t", f.tenantId], { env });
  t.deepEqual(
    list.map((r: any) => [Number(r.tree_size), r.anchored]),
    [
      [4, "files"],
      [3, "files"],
    ],
  );

  const cons = await cliJson(["checkpoint", "consistency", "-t", f.tenantId, "--from", "3", "--to", "4"], {
    env,
  });
  t.is(cons.proof.length, 3);
  const shown = await runCli(["proof", runs[0]], { env });
  t.regex(shown.stdout, /checkpointed\s+│\s+yes, in the checkpoint of size 4/);

  const bundle = path.join(tmp, "bundle.json");
  const ex = await runCli(["proof", "export", runs[0], "-o", bundle, "--consistency-from", "3"], { env });
  t.is(ex.code, 0, ex.stderr);
  const offline = { DATABASE_URL: undefined };
  const v = await cliJson(["proof", "verify", bundle, "--key", k.verifier_key, "--checkpoint", kept], {
    env: offline,
  });
  t.like(v, {
    verification_status: "VERIFIED",
    log: { status: "CHECKPOINTED", checkpoint_size: 4, consistent_with: 3 },
  });
  const other = await cliJson(["checkpoint", "keygen", "--name", "runproof.test/cli"]);
  const bad = await runCli(["proof", "verify", bundle, "--key", other.verifier_key], { env: offline });
  t.is(bad.code, 3);
  t.regex(bad.stdout, /log: BAD_CHECKPOINT/);

  const ok = await runCli(["verify-all", "--no-progress", "--against", anchors, "--key", k.verifier_key], {
    env,
  });
  t.is(ok.code, 0, ok.stdout + ok.stderr);
  t.regex(ok.stdout, /logs against .*: consistent/);
  const fileOnly = await cliJson(
    ["verify-all", "--no-progress", "--against", kept, "--key", k.verifier_key],
    { env },
  );
  t.like(fileOnly, { ok: true });
  t.deepEqual(
    fileOnly.logs.map((r: any) => r.status),
    ["NOT_CHECKPOINTED", "CONSISTENT"],
  );

  // A superuser deletes a checkpointed run's leaf and renumbers nothing: detected, exit 3.
  const c = await db.pool.connect();
  try {
    await c.query("begin");
    await c.query("alter table runproof.log_leaves disable trigger all");
    await c.query(`delete from runproof.log_leaves where tenant_id = $1 and leaf_index = 1`, [f.tenantId]);
    await c.query("alter table runproof.log_leaves enable always trigger tg_log_leaves__append_only");
    await c.query("alter table runproof.log_leaves enable always trigger tg_log_leaves__no_truncate");
    await c.query("commit");
  } finally {
    c.release();
  }
  const caught = await cliJson(
    ["verify-all", "--no-progress", "--against", anchors, "--key", k.verifier_key],
    { env, expect: 3 },
  );
  t.false(caught.ok);
  t.true(caught.logs.some((r: any) => r.status === "DELETED" && r.first_bad_leaf === "1"));
});

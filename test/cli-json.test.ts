// --json: in every form docs/cli.md documents, stdout is exactly one JSON document (JSON.parse of
// the whole of stdout), whatever else the command says on stderr: a first-use migration, live step
// lines, progress. `npx runproof` (the documented way to call the CLI) adds nothing to stdout.
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import test from "ava";
import pg from "pg";
import { REPO_ROOT } from "../src/lib/database.ts";
import { collect, runCli, spawnCli, until } from "./helpers/cli.ts";
import { createTestDatabase } from "./helpers/db.ts";

/** Runs a command and parses all of its stdout as one JSON document. */
async function json(args: string[], env: Record<string, string | undefined>, expect = 0) {
  const r = await runCli(args, { env, timeoutMs: 120_000 });
  if (r.code !== expect) throw new Error(`${args.join(" ")} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  try {
    return { value: JSON.parse(r.stdout), stderr: r.stderr };
  } catch (e) {
    throw new Error(
      `${args.join(" ")}: stdout is not one JSON document (${(e as Error).message}):\n${r.stdout}`,
    );
  }
}

test("every documented --json form prints exactly one JSON document on stdout", async (t) => {
  const db = await createTestDatabase("cli-json");
  t.teardown(() => db.drop());
  const env = { DATABASE_URL: db.url };
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), "rp-json-"));
  t.teardown(() => fs.rm(tmp, { recursive: true, force: true }));

  const tenant = (await json(["tenant", "create", "json-co", "--json"], env)).value;
  t.truthy(tenant.id);
  t.true(Array.isArray((await json(["tenant", "list", "--json"], env)).value));
  t.like((await json(["tenant", "retention", tenant.id, "--keep", "30 days", "--json"], env)).value, {
    id: tenant.id,
    payload_retention: "30 days",
  });
  const key = (await json(["api-key", "create", "--tenant-id", tenant.id, "--json"], env)).value;
  t.regex(key.api_key, /^rp_/);
  t.is((await json(["api-key", "list", "--tenant-id", tenant.id, "--json"], env)).value.length, 1);
  t.truthy((await json(["api-key", "revoke", "--tenant-id", tenant.id, key.key_id, "--json"], env)).value);
  const agent = (await json(["agent", "create", "--tenant-id", tenant.id, "--name", "a1", "--json"], env))
    .value;
  t.truthy(agent.id);
  t.is((await json(["agent", "list", "--tenant-id", tenant.id, "--json"], env)).value.length, 1);
  t.true((await json(["skills", "list", "--json"], env)).value.length > 0);

  // run without and with --wait (its live lines go to stderr); a worker executes it.
  const queued = (await json(["run", "-t", tenant.id, "-a", "a1", "-g", "remember x = 1", "--json"], env))
    .value;
  t.truthy(queued.run_id);
  const worker = spawn(
    process.execPath,
    ["--import", "tsx", path.join(REPO_ROOT, "src/bin/runproof.ts"), "worker"],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env, RUNPROOF_LOG_LEVEL: "warn" },
      stdio: "ignore",
    },
  );
  t.teardown(() => {
    if (worker.exitCode === null) worker.kill("SIGKILL");
  });
  const waited = await json(
    ["run", "-t", tenant.id, "-a", "a1", "-g", "wait 10 ms", "--wait", "--json"],
    env,
  );
  t.like(waited.value, { run: { status: "succeeded" }, proof: { verification_status: "VERIFIED" } });
  t.regex(waited.stderr, /following it live/);
  const runsWait = await json(["runs", "wait", queued.run_id, "--json"], env);
  t.like(runsWait.value, { run: { status: "succeeded" }, proof: { verification_status: "VERIFIED" } });
  t.regex(runsWait.stderr, /waiting for run/);
  t.like((await json(["runs", "get", queued.run_id, "--json"], env)).value, { run: { id: queued.run_id } });
  t.is((await json(["runs", "list", "--json"], env)).value.length, 2);
  t.like((await json(["proof", queued.run_id, "--json"], env)).value, { verification_status: "VERIFIED" });
  const bundle = path.join(tmp, "run.json");
  const exported = await runCli(["proof", "export", queued.run_id, "-o", bundle], { env });
  t.is(exported.code, 0, exported.stderr);
  t.like((await json(["proof", "verify", bundle, "--json"], env)).value, { verification_status: "VERIFIED" });
  t.truthy((await json(["erase", "--run", queued.run_id, "--reason", "json test", "--json"], env)).value);
  t.truthy((await json(["verify-all", "--json"], env)).value);
  t.deepEqual((await json(["sql", "select 1 as one", "--json"], env)).value, [{ one: 1 }]);
  t.like((await json(["sql", "--json"], env)).value, { database_url: db.url, embedded: false });
  worker.kill("SIGTERM");
});

test("a command's first use of a database migrates it on stderr; stdout stays one JSON document", async (t) => {
  const admin = new pg.Client({ connectionString: process.env.RUNPROOF_TEST_ROOT_URL });
  await admin.connect();
  const name = `rpt_json_empty_${process.pid}`;
  await admin.query(`create database ${name}`);
  t.teardown(async () => {
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.end();
  });
  const url = new URL(process.env.RUNPROOF_TEST_ROOT_URL!);
  url.pathname = `/${name}`;
  const r = await json(["tenant", "list", "--json"], { DATABASE_URL: url.toString() });
  t.deepEqual(r.value, []);
  t.regex(r.stderr, /no RunProof schema in this database; migrating first/);
});

test("npx runproof adds nothing to stdout: --json output pipes as it is", async (t) => {
  const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn("npx", ["runproof", "proof", "verify", "-", "--json"], {
      cwd: REPO_ROOT,
      env: { ...process.env, DATABASE_URL: "postgres://nobody@127.0.0.1:1/none" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end("{}");
  });
  // An empty object is not a bundle: verify says so, exit 3, in one JSON document.
  t.is(r.code, 3, r.stderr);
  t.like(JSON.parse(r.stdout), { verification_status: "INVALID_BUNDLE" });
  t.notRegex(r.stderr, /EBADENGINE/);
});

test("start --json: one JSON object on stdout, from start to Ctrl-C", async (t) => {
  const db = await createTestDatabase("cli-json-start");
  t.teardown(() => db.drop());
  const child = spawnCli(["start", "--json"], { env: { DATABASE_URL: db.url, RUNPROOF_PORT: "0" } });
  const output = collect(child);
  const exited = new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  const parse = () => {
    try {
      return JSON.parse(output.stdout);
    } catch {
      return child.exitCode !== null && { exited: child.exitCode };
    }
  };
  const started = await until(parse, 120_000, "start's JSON object");
  t.regex(started.graphql_url ?? "", /^http:\/\/127\.0\.0\.1:\d+\/graphql$/, output.stderr);
  t.regex(started.api_key, /^rp_/);
  child.kill("SIGINT");
  t.is(await exited, 0, output.stderr);
  t.deepEqual(JSON.parse(output.stdout), started);
});

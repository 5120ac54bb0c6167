// runproof start: migrations, a worker and the GraphQL server in one process. The printed key
// works against the printed URL, a run enqueued over GraphQL is executed by the built-in
// worker, and SIGINT stops everything cleanly.
import { execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import fs from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import test from "ava";
import { REPO_ROOT } from "../src/lib/database.ts";
import { findFreePort } from "../src/lib/embedded.ts";
import { collect, runCli, spawnCli, until } from "./helpers/cli.ts";
import { createTestDatabase } from "./helpers/db.ts";

async function gql(url: string, key: string, query: string) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ query }),
  });
  return { status: res.status, body: (await res.json()) as { data?: any; errors?: unknown[] } };
}

test("start prints a working GraphQL URL and API key, runs the worker, and stops cleanly on SIGINT", async (t) => {
  const db = await createTestDatabase("cli-start");
  t.teardown(() => db.drop());
  const port = await findFreePort();
  const child = spawnCli(["start"], { env: { DATABASE_URL: db.url, RUNPROOF_PORT: String(port) } });
  const output = collect(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  t.teardown(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });

  const url = (await until(
    () => output.stdout.match(/^\s+GraphQL\s+(http:\/\/\S+)/m) || (child.exitCode !== null && "exited"),
    60_000,
    "the GraphQL URL",
  )) as RegExpMatchArray | string;
  if (typeof url === "string") return t.fail(`start exited early:\n${output.stdout}\n${output.stderr}`);
  const graphqlUrl = url[1];
  t.is(graphqlUrl, `http://127.0.0.1:${port}/graphql`);
  const key = output.stdout.match(/^\s+API key\s+(rp_[0-9a-f]{8}_[0-9a-f]{64})$/m)?.[1];
  const tenantId = output.stdout.match(/^\s+tenant\s+([0-9a-f-]{36})$/m)?.[1];
  const agentId = output.stdout.match(/^\s+agent\s+([0-9a-f-]{36})\s/m)?.[1];
  t.truthy(key && tenantId && agentId, output.stdout);
  t.regex(output.stdout, /npx runproof sql .*runproof\.enqueue_run\(/);
  t.regex(
    output.stdout,
    /^ {2}export RUNPROOF_GRAPHQL_URL=http:\/\/127\.0\.0\.1:\d+\/graphql RUNPROOF_API_KEY=rp_[0-9a-f_]+$/m,
  );
  t.regex(output.stdout, /curl -s http:\/\/127\.0\.0\.1:\d+\/graphql -H 'Authorization: Bearer rp_/);

  // The demo tenant and agent exist; the key is labelled 'start'.
  const {
    rows: [row],
  } = await db.pool.query(
    `select t.name as tenant, a.name as agent, (select label from runproof_private.api_keys k where k.tenant_id = t.id and k.key_prefix = $3) as label
       from runproof.tenants t join runproof.agents a on a.tenant_id = t.id where t.id = $1 and a.id = $2`,
    [tenantId, agentId, key!.slice(0, 11)],
  );
  t.deepEqual(row, { tenant: "demo", agent: "demo-agent", label: "start" });

  const q = await gql(graphqlUrl, key!, `{ runs(first: 5) { totalCount nodes { id } } }`);
  t.is(q.status, 200, JSON.stringify(q.body));
  t.deepEqual(q.body, { data: { runs: { totalCount: 0, nodes: [] } } });
  // The banner's web line is the explorer's page.
  const web = output.stdout.match(/^\s+web\s+(http:\/\/\S+)/m)?.[1];
  t.is(web, `http://127.0.0.1:${port}/`);
  const page = await fetch(web!);
  t.is(page.status, 200);
  t.regex(page.headers.get("content-type") ?? "", /text\/html/);
  const denied = await gql(graphqlUrl, `rp_00000000_${"0".repeat(64)}`, `{ runs(first: 1) { totalCount } }`);
  t.is(denied.status, 401);

  // A run enqueued over GraphQL is executed by start's own worker.
  const m = await gql(
    graphqlUrl,
    key!,
    `mutation { enqueueRun(input: {agentId: "${agentId}", goal: "wait 100 ms then remember x = 1", originSystemId: "cli-start-test"}) { run { id } } }`,
  );
  t.is(m.status, 200, JSON.stringify(m.body));
  const runId = m.body.data.enqueueRun.run.id;
  const done = await until(
    async () => {
      const r = await gql(
        graphqlUrl,
        key!,
        `{ run(id: "${runId}") { status proof { verificationStatus stepCount } } }`,
      );
      return (
        ["succeeded", "failed", "halted", "cancelled"].includes(r.body.data?.run?.status) && r.body.data.run
      );
    },
    30_000,
    "the run to finish",
  );
  t.deepEqual(done, { status: "succeeded", proof: { verificationStatus: "VERIFIED", stepCount: 2 } });

  child.kill("SIGINT");
  const { code, signal } = await exited;
  t.is(signal, null, output.stderr);
  t.is(code, 0, output.stderr);
  t.regex(
    output.stderr,
    /SIGINT: stopping\n {2}stopped the worker\n {2}stopped the GraphQL server\nstopped\n$/,
  );
  await t.throwsAsync(fetch(graphqlUrl, { method: "POST" }), undefined, "the server is gone");
});

test("start on a GraphQL port that is taken fails at once: it names the port and how to pick another, and creates nothing", async (t) => {
  const db = await createTestDatabase("cli-start-busy");
  t.teardown(() => db.drop());
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
  t.teardown(() => new Promise<void>((r) => blocker.close(() => r())));
  const port = (blocker.address() as net.AddressInfo).port;
  const r = await runCli(["start"], { env: { DATABASE_URL: db.url, RUNPROOF_PORT: String(port) } });
  t.is(r.code, 1, r.stdout + r.stderr);
  t.is(r.stdout, "");
  t.is(
    r.stderr,
    `runproof: port ${port} (GraphQL) is already in use: is another npm start (npx runproof start) running?\n` +
      `  hint: stop it with Ctrl-C in its terminal, or pick another port: npx runproof start --port ${port + 1}, or RUNPROOF_PORT=${port + 1} npm start (0 picks a free one)\n`,
  );
  // Nothing was created: no demo tenant, no API key, no worker.
  const {
    rows: [n],
  } = await db.pool.query(
    `select (select count(*) from runproof.tenants)::int as tenants, (select count(*) from runproof_private.api_keys)::int as keys,
            (select count(*) from runproof_private.worker_heartbeats)::int as workers`,
  );
  t.deepEqual(n, { tenants: 0, keys: 0, workers: 0 });
});

test("start on an embedded Postgres port that is taken fails at once and creates no data directory", async (t) => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
  t.teardown(() => new Promise<void>((r) => blocker.close(() => r())));
  const pgPort = (blocker.address() as net.AddressInfo).port;
  const dataDir = path.join(await fs.mkdtemp(path.join(os.tmpdir(), "rp-start-")), "data");
  t.teardown(() => fs.rm(path.dirname(dataDir), { recursive: true, force: true }));
  const r = await runCli(["start"], {
    env: {
      DATABASE_URL: undefined,
      RUNPROOF_DATA_DIR: dataDir,
      RUNPROOF_PG_PORT: String(pgPort),
      RUNPROOF_PORT: "0",
    },
  });
  t.is(r.code, 1, r.stdout + r.stderr);
  t.regex(
    r.stderr,
    new RegExp(
      `^runproof: port ${pgPort} \\(the embedded Postgres\\) is already in use by another program\n`,
    ),
  );
  t.regex(
    r.stderr,
    /\n {2}hint: pick another port: RUNPROOF_PG_PORT=\d+ npm start .*or use your own Postgres with DATABASE_URL\n$/,
  );
  t.false(existsSync(dataDir), "no data directory was created");
});

test("Ctrl-C on npm start (a terminal's SIGINT to its process group) stops worker, server and embedded Postgres in order, exit 0, no error lines", async (t) => {
  const dataDir = path.join(await fs.mkdtemp(path.join(os.tmpdir(), "rp-start-")), "data");
  t.teardown(() => fs.rm(path.dirname(dataDir), { recursive: true, force: true }));
  await fs.chmod(path.dirname(dataDir), 0o755); // as root, postgres runs as the postgres user
  const [pgPort, port] = [await findFreePort(), await findFreePort()];
  // npm start as in a terminal: npm, its shell and node share one process group, which gets the SIGINT.
  const child = spawn("npm", ["start"], {
    cwd: REPO_ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      DATABASE_URL: "",
      RUNPROOF_DATA_DIR: dataDir,
      RUNPROOF_PG_PORT: String(pgPort),
      RUNPROOF_PORT: String(port),
      RUNPROOF_LOG_LEVEL: "info",
      NO_COLOR: "1",
    },
  });
  const output = collect(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, "SIGKILL");
  });
  await until(
    () => /Ctrl-C stops it\./.test(output.stdout) || child.exitCode !== null,
    120_000,
    "the banner",
  );
  t.regex(output.stdout, /Ctrl-C stops it\./, output.stderr);

  // The postmaster is in a process group of its own: the terminal's SIGINT does not reach it.
  const pgPid = Number(
    (await fs.readFile(path.join(dataDir, "pg", "postmaster.pid"), "utf8")).split("\n")[0],
  );
  const pgid = (pid: number) =>
    Number(execFileSync("ps", ["-o", "pgid=", "-p", String(pid)], { encoding: "utf8" }).trim());
  t.not(pgid(pgPid), child.pid);
  t.is(pgid(pgPid), pgPid);

  process.kill(-child.pid!, "SIGINT");
  const { code, signal } = await exited;
  t.deepEqual({ code, signal }, { code: 0, signal: null }, output.stderr);
  const stderr = output.stderr;
  t.regex(
    stderr,
    /SIGINT: stopping\n {2}stopped the worker\n(.*\n)* {2}stopped the GraphQL server\n {2}stopped the embedded Postgres \(unless another command shares it\)\nstopped\n$/,
  );
  // Logs are JSON lines when stderr is not a terminal; none is a warning or an error, and the first
  // start's set-up of the authenticator's password is an info line saying what it does.
  const logs = stderr
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l));
  t.true(logs.length > 0, stderr);
  t.deepEqual(
    logs.filter((l) => l.level >= 40),
    [],
  );
  t.true(
    logs.some((l) => l.level === 30 && /setting the login password of runproof_authenticator/.test(l.msg)),
  );
  t.notRegex(stderr, /terminating connection|error|failed/i);
  // The postmaster has gone too.
  t.throws(() => process.kill(pgPid, 0));
});

// script(1) runs npm start on a pseudo-terminal: Ctrl-C is typed (^C into the terminal), and the
// terminal's line discipline sends SIGINT to its foreground process group, as a person's would.
// `exec`: script starts $SHELL -c; an interactive shell keeps itself out of the job's process group,
// but a waiting `sh -c` (dash, where SHELL is unset) would be in it, get the SIGINT and exit 130
// whatever npm returned.
const onATerminal = existsSync("/usr/bin/script") ? test : test.skip;
onATerminal(
  "on a terminal: ^C typed into npm start stops it with exit 0; the logs are human-readable",
  async (t) => {
    const dataDir = path.join(await fs.mkdtemp(path.join(os.tmpdir(), "rp-start-")), "data");
    t.teardown(() => fs.rm(path.dirname(dataDir), { recursive: true, force: true }));
    await fs.chmod(path.dirname(dataDir), 0o755); // as root, postgres runs as the postgres user
    const [pgPort, port] = [await findFreePort(), await findFreePort()];
    const child = spawn("script", ["-qefc", "exec npm start", "/dev/null"], {
      cwd: REPO_ROOT,
      stdio: ["pipe", "pipe", "pipe"],
      env: {
        ...process.env,
        DATABASE_URL: "",
        RUNPROOF_DATA_DIR: dataDir,
        RUNPROOF_PG_PORT: String(pgPort),
        RUNPROOF_PORT: String(port),
        RUNPROOF_LOG_LEVEL: "info",
        NO_COLOR: "1",
      },
    });
    const output = collect(child);
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    t.teardown(() => {
      if (child.exitCode === null) child.kill("SIGKILL");
    });
    await until(
      () => /Ctrl-C stops it\./.test(output.stdout) || child.exitCode !== null,
      120_000,
      "the banner",
    );
    const pgPid = Number(
      (await fs.readFile(path.join(dataDir, "pg", "postmaster.pid"), "utf8")).split("\n")[0],
    );
    child.stdin!.write("\x03");
    t.is(await exited, 0, output.stdout);
    const screen = output.stdout.replaceAll("\r\n", "\n");
    t.regex(
      screen,
      /SIGINT: stopping\n {2}stopped the worker\n(.*\n)* {2}stopped the GraphQL server\n {2}stopped the embedded Postgres \(unless another command shares it\)\nstopped\n/,
    );
    // pino-pretty lines, not JSON; the first start's password set-up is an INFO line saying what it does.
    t.regex(
      screen,
      /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: graphql: setting the login password of runproof_authenticator /m,
    );
    t.regex(screen, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: worker: worker started /m);
    t.notRegex(screen, /^\{"level"/m);
    t.notRegex(screen, /\] (WARN|ERROR|FATAL): /);
    t.notRegex(screen, /terminating connection|error|failed/i);
    t.throws(() => process.kill(pgPid, 0), undefined, "the embedded Postgres has stopped");
  },
);

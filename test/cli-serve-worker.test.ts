// runproof worker and runproof serve as the long-running processes they are: started, used
// through the CLI and GraphQL, and stopped by a signal with a clean exit.
import test from "ava";
import { findFreePort } from "../src/lib/embedded.ts";
import { cliJson, collect, runCli, spawnCli, until } from "./helpers/cli.ts";
import { createTestDatabase } from "./helpers/db.ts";

const exitOf = (child: ReturnType<typeof spawnCli>) =>
  new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );

test("run --wait without a worker gives up after --timeout; runproof worker then executes it; SIGTERM stops the worker", async (t) => {
  const db = await createTestDatabase("cli-worker");
  t.teardown(() => db.drop());
  const env = { DATABASE_URL: db.url };
  const tenant = await cliJson(["tenant", "create", "w"], { env });
  await cliJson(["agent", "create", "-t", tenant.id, "-n", "bot"], { env });

  const started = Date.now();
  const lonely = await runCli(
    ["run", "-t", tenant.id, "-a", "bot", "-g", "wait 10 ms", "--wait", "--timeout", "1"],
    { env },
  );
  t.is(lonely.code, 1);
  t.true(Date.now() - started < 20_000);
  t.regex(
    lonely.stdout,
    /gave up waiting after 1 s; the run is (pending|planned) and carries on: npx runproof runs get/,
  );
  t.regex(lonely.stderr, /timed out waiting for run/);
  const runId = lonely.stdout.match(/^run ([0-9a-f-]{36}) enqueued/m)![1];

  const worker = spawnCli(["worker", "--concurrency", "2"], { env });
  const output = collect(worker);
  const exited = exitOf(worker);
  t.teardown(() => {
    if (worker.exitCode === null) worker.kill("SIGKILL");
  });
  await until(
    () => /worker \S+ running \(concurrency 2\)/.test(output.stderr),
    30_000,
    "the worker to start",
  );
  // The run left behind is picked up; a new one is followed live to the end.
  await until(
    async () =>
      (await db.pool.query(`select 1 from runproof.runs where id = $1 and status = 'succeeded'`, [runId]))
        .rowCount,
    30_000,
    "the earlier run",
  );
  const r = await runCli(
    ["run", "-t", tenant.id, "-a", "bot", "-g", "wait 20 ms, then wait 30 ms", "--wait"],
    { env },
  );
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /✓ step\s+1\s+plan\s+1\s+wait\s+succeeded/);

  worker.kill("SIGTERM");
  t.deepEqual(await exited, { code: 0, signal: null });
  t.regex(output.stderr, /SIGTERM: stopping the worker/);
});

test("runproof serve answers GraphQL with a key made by api-key create, and exits 0 on SIGINT", async (t) => {
  const db = await createTestDatabase("cli-serve");
  t.teardown(() => db.drop());
  const env = { DATABASE_URL: db.url };
  const tenant = await cliJson(["tenant", "create", "s"], { env });
  const { api_key: key } = await cliJson(["api-key", "create", "-t", tenant.id, "-l", "serve test"], { env });
  const port = await findFreePort();
  const server = spawnCli(["serve", "--port", String(port)], { env });
  const output = collect(server);
  const exited = exitOf(server);
  t.teardown(() => {
    if (server.exitCode === null) server.kill("SIGKILL");
  });
  const url = (await until(
    () => output.stdout.match(/^GraphQL: (\S+)$/m) || (server.exitCode !== null && "exited"),
    60_000,
    "the URL",
  )) as RegExpMatchArray | string;
  if (typeof url === "string") return t.fail(output.stderr);
  t.is(url[1], `http://127.0.0.1:${port}/graphql`);
  const res = await fetch(url[1], {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ query: "{ currentTenant { id name } }" }),
  });
  t.is(res.status, 200);
  t.deepEqual(await res.json(), { data: { currentTenant: { id: tenant.id, name: "s" } } });
  server.kill("SIGINT");
  t.deepEqual(await exited, { code: 0, signal: null });
});

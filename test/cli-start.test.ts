// runproof start: migrations, a worker and the GraphQL server in one process. The printed key
// works against the printed URL, a run enqueued over GraphQL is executed by the built-in
// worker, and SIGINT stops everything cleanly.
import test from "ava";
import { findFreePort } from "../src/lib/embedded.ts";
import { collect, spawnCli, until } from "./helpers/cli.ts";
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
  t.regex(output.stdout, /psql .*runproof\.enqueue_run\(/);
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
  t.regex(output.stderr, /SIGINT: stopping the GraphQL server and the worker\nstopped/);
  await t.throwsAsync(fetch(graphqlUrl, { method: "POST" }), undefined, "the server is gone");
});

test("start on a port that is taken fails with exit 1 and the reason", async (t) => {
  const db = await createTestDatabase("cli-start-busy");
  t.teardown(() => db.drop());
  const http = await import("node:http");
  const blocker = http.createServer();
  await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
  t.teardown(() => new Promise<void>((r) => blocker.close(() => r())));
  const port = (blocker.address() as { port: number }).port;
  const child = spawnCli(["start"], { env: { DATABASE_URL: db.url, RUNPROOF_PORT: String(port) } });
  const output = collect(child);
  const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
  t.is(code, 1, output.stdout + output.stderr);
  t.regex(output.stderr, /EADDRINUSE/);
});

// `npx tsx bench/abuse.ts [--repo DIR] [--out FILE.json] [--flood-seconds N]`
//
// Issue 13's hostile tenant, measured: the GraphQL server of DIR (default: this checkout) runs as
// a child process (`runproof serve`) on a fresh database of a throwaway embedded Postgres (port
// RUNPROOF_PG_PORT, default 54360), and is sent the attacks of the issue, one at a time: deep
// nesting, `first: 1000000`, 500 aliases, 5,000-deep nesting, an application/graphql body with
// bytes that are not UTF-8; then a fixed flood (16 concurrent heavy queries of one tenant) while
// another tenant's trivial query is timed, and the server's RSS before, during and after; then a
// key revoked under an open subscription. Prints a table and writes the figures as JSON.
// Run it on an old checkout (`--repo`) and on this one to get "before" and "after" for
// docs/reliability.md. Every request times out (60 s) and every loop is bounded.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { databaseUrlWithName } from "../src/lib/database.ts";
import { startEmbeddedPostgres } from "../src/lib/embedded.ts";
import {
  aliasesQuery,
  deepLiteralMutation,
  deepSelection,
  firstError,
  nestedRunsQuery,
  percentile,
  postQuery,
  request,
  seedTenant,
  sleep,
  spawnServer,
  type RawResponse,
  type ServerProcess,
} from "../test/helpers/abuse.ts";
import { subscribe } from "../test/helpers/graphql.ts";

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : def;
}

const repoDir = path.resolve(arg("repo", path.resolve(import.meta.dirname, "..")));
const outFile = arg("out", "");
const floodSeconds = Number(arg("flood-seconds", "20"));
const only = new Set(arg("only", "attacks,floods,revocation").split(","));
const MB = 1024 * 1024;
const log = (m: string) => process.stderr.write(`abuse: ${m}\n`);

interface Attack {
  name: string;
  status: number;
  code?: string;
  message?: string;
  ms: number;
  bytes: number;
  rssBeforeMb: number;
  rssAfterMb: number;
  note?: string;
}

async function attack(
  server: ServerProcess,
  name: string,
  run: () => Promise<RawResponse>,
  note?: (r: RawResponse) => string,
): Promise<Attack> {
  // A second apart: a refused document is charged the cost limit of the second it arrives in.
  await sleep(1100);
  const rssBefore = server.rss();
  let peak = rssBefore;
  const sampler = setInterval(() => {
    try {
      peak = Math.max(peak, server.rss());
    } catch {}
  }, 100);
  const r = await run();
  clearInterval(sampler);
  let rssAfter = Number.NaN;
  try {
    rssAfter = server.rss();
  } catch {}
  const e = firstError(r);
  const a: Attack = {
    name,
    status: r.timedOut ? -1 : r.status,
    code: r.timedOut ? "TIMED OUT (60 s)" : r.networkError ? `NETWORK: ${r.networkError}` : e.code,
    message: e.message?.slice(0, 160),
    ms: Math.round(r.ms),
    bytes: r.bytes,
    rssBeforeMb: Math.round(rssBefore / MB),
    rssAfterMb: Math.round(Math.max(peak, rssAfter) / MB),
    note: note?.(r),
  };
  log(
    `${name}: ${a.status} ${a.code ?? ""} ${a.ms} ms ${a.bytes} bytes rss ${a.rssBeforeMb} -> ${a.rssAfterMb} MB ${a.note ?? ""}`,
  );
  return a;
}

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runproof-abuse-"));
  const pgPort = Number(process.env.RUNPROOF_PG_PORT ?? 54360);
  const pgServer = await startEmbeddedPostgres({
    dataDir: path.join(tmp, "pg"),
    port: pgPort,
    persistent: false,
  });
  const results: Record<string, unknown> = { repo: repoDir, when: new Date().toISOString() };
  let server: ServerProcess | undefined;
  try {
    const admin = new pg.Client({ connectionString: pgServer.rootUrl });
    await admin.connect();
    await admin.query("create database runproof_abuse");
    await admin.end();
    const dbUrl = databaseUrlWithName(pgServer.rootUrl, "runproof_abuse");
    const env = { RUNPROOF_AUTHENTICATOR_PASSWORD: "abuse-bench-password" };
    // The target checkout migrates its own schema (async: a blocked event loop would stop us
    // reading the embedded Postgres's log pipe, and Postgres would block writing to it).
    {
      const { spawn } = await import("node:child_process");
      const m = spawn(
        process.execPath,
        ["--import", "tsx", path.join(repoDir, "src/bin/runproof.ts"), "migrate"],
        {
          cwd: repoDir,
          env: { ...process.env, ...env, DATABASE_URL: dbUrl, RUNPROOF_LOG_LEVEL: "warn" },
          stdio: ["ignore", "ignore", "pipe"],
        },
      );
      let stderr = "";
      m.stderr.on("data", (d) => (stderr += String(d)));
      const code = await new Promise<number | null>((r) => m.once("exit", r));
      if (code !== 0) throw new Error(`migrate failed: ${stderr}`);
    }
    const pool = new pg.Pool({ connectionString: dbUrl, max: 4 });
    log("seeding: attacker (5 runs x 2,000 steps), bulk (2,000 runs), bystander, subscriber");
    const attacker = await seedTenant(pool, { name: "attacker", runs: 5, steps: 2000 });
    const bulk = await seedTenant(pool, { name: "bulk", runs: 2000, steps: 1 });
    const bystander = await seedTenant(pool, { name: "bystander", runs: 3, steps: 5 });
    const subscriber = await seedTenant(pool, { name: "subscriber", runs: 1, steps: 1 });

    server = await spawnServer(dbUrl, { repoDir, env });
    const url = server.url;
    log(`server ${url} pid ${server.pid}`);
    const trivial = "{ currentTenant { name } }";
    for (let i = 0; i < 50; i++) await postQuery(url, bystander.apiKey, trivial);
    await postQuery(
      url,
      attacker.apiKey,
      "{ runs(first: 2) { nodes { id traces { nodes { steps(first: 5) { nodes { stepHash } } } } } } }",
    );
    results.rssIdleMb = Math.round(server.rss() / MB);

    const attacks: Attack[] = [];
    if (only.has("attacks")) {
      attacks.push(
        await attack(server, "20-level nested query", () =>
          postQuery(url, attacker.apiKey, nestedRunsQuery(20)),
        ),
      );
      attacks.push(
        await attack(server, "17-level nested query", () =>
          postQuery(url, attacker.apiKey, nestedRunsQuery(17)),
        ),
      );
      attacks.push(
        await attack(
          server,
          "first: 1000000 (tenant with 2,000 runs)",
          () => postQuery(url, bulk.apiKey, "{ runs(first: 1000000) { nodes { id } } }"),
          (r) => `${r.json?.data?.runs?.nodes?.length ?? 0} rows returned`,
        ),
      );
      attacks.push(
        await attack(
          server,
          "runs without first (tenant with 2,000 runs)",
          () => postQuery(url, bulk.apiKey, "{ runs { nodes { id } } }"),
          (r) => `${r.json?.data?.runs?.nodes?.length ?? 0} rows returned`,
        ),
      );
      attacks.push(
        await attack(server, "500 aliases with different arguments", () =>
          postQuery(url, attacker.apiKey, aliasesQuery(500)),
        ),
      );
      attacks.push(
        await attack(server, "selection set nested 5,000 deep", () =>
          postQuery(url, attacker.apiKey, deepSelection(5000)),
        ),
      );
      attacks.push(
        await attack(server, "plan literal nested 5,000 deep in the query text", () =>
          postQuery(url, attacker.apiKey, deepLiteralMutation(attacker.agentId, 5000)),
        ),
      );
      {
        const goalMarker = `ffe-${Date.now()}`;
        const body = Buffer.concat([
          Buffer.from(
            `mutation { enqueueRun(input: { agentId: "${attacker.agentId}", originSystemId: "abuse", goal: "${goalMarker} `,
          ),
          Buffer.from([0xff, 0xfe]),
          Buffer.from(`", plan: { version: 1, steps: [{ skill: "noop" }] } }) { run { id } } }`),
        ]);
        attacks.push(
          await attack(
            server,
            "application/graphql body with bytes FF FE in the goal",
            () => request(url, { key: attacker.apiKey, body, contentType: "application/graphql" }),
            () => "",
          ),
        );
        const { rows } = await pool.query(
          `select encode(convert_to(goal, 'UTF8'), 'hex') as hex from runproof.runs where goal like $1`,
          [`${goalMarker}%`],
        );
        attacks.at(-1)!.note = rows.length
          ? `stored: goal bytes ...${rows[0].hex.slice(-12)} (efbfbd = U+FFFD)`
          : "nothing stored";
        log(`  ${attacks.at(-1)!.note}`);
      }
    }
    results.attacks = attacks;

    // ---- Fair share: a fixed flood from the attacker while the bystander's trivial query is timed ----
    const heavyAllowed =
      "{ runs(first: 5) { nodes { id proof { verificationStatus stepCount rootHash } traces { nodes { steps(first: 50) { nodes { stepIndex stepHash input output } } } } } } }";
    const floods: Record<string, unknown>[] = [];
    for (const [label, heavy] of [
      ["17-level nested query", nestedRunsQuery(17)],
      ["5 proofs of 2,000 steps + 250 steps", heavyAllowed],
    ] as const) {
      if (!only.has("floods")) break;
      await sleep(3000);
      const bystanderLoop = async (ms: number) => {
        const lat: number[] = [];
        let failed = 0;
        const end = performance.now() + ms;
        while (performance.now() < end) {
          const r = await postQuery(url, bystander.apiKey, trivial, undefined, 60_000);
          if (r.status === 200 && r.json?.data?.currentTenant) lat.push(r.ms);
          else failed++;
          await sleep(20);
        }
        return { lat, failed };
      };
      log(`fair share (${label}): bystander unloaded`);
      const unloaded = await bystanderLoop(8000);
      const rssBaseline = server.rss();
      let rssPeak = rssBaseline;
      const sampler = setInterval(() => {
        try {
          rssPeak = Math.max(rssPeak, server!.rss());
        } catch {}
      }, 200);
      let stop = false;
      const statuses: Record<string, number> = {};
      const floodClient = async () => {
        while (!stop) {
          const r = await postQuery(url, attacker.apiKey, heavy, undefined, 60_000);
          const key = r.timedOut
            ? "timeout"
            : String(r.status) + (firstError(r).code ? ` ${firstError(r).code}` : "");
          statuses[key] = (statuses[key] ?? 0) + 1;
          if (r.networkError) await sleep(200);
        }
      };
      log(`fair share (${label}): flood of 16 for ${floodSeconds} s`);
      const flood = Array.from({ length: 16 }, () => floodClient());
      await sleep(1000);
      const loaded = await bystanderLoop(floodSeconds * 1000);
      stop = true;
      await Promise.all(flood);
      clearInterval(sampler);
      await sleep(10_000);
      const rssAfter = server.rss();
      const f = {
        label,
        unloadedP50: percentile(unloaded.lat, 50),
        unloadedP99: percentile(unloaded.lat, 99),
        loadedP50: percentile(loaded.lat, 50),
        loadedP99: percentile(loaded.lat, 99),
        loadedMax: Math.max(...loaded.lat, 0),
        bystanderRequests: loaded.lat.length,
        bystanderFailed: loaded.failed,
        floodResponses: statuses,
        rssBaselineMb: Math.round(rssBaseline / MB),
        rssPeakMb: Math.round(rssPeak / MB),
        rssAfter10sMb: Math.round(rssAfter / MB),
      };
      log(JSON.stringify(f));
      floods.push(f);
    }
    results.floods = floods;

    // ---- Revocation under an open subscription ----
    if (only.has("revocation")) {
      // A run that stays planned (no worker runs here), so its subscription stays open.
      const {
        rows: [planned],
      } = await pool.query(
        `select id from runproof.enqueue_run($1, $2, 'followed', 'abuse', '{"version":1,"steps":[{"skill":"noop"}]}')`,
        [subscriber.tenantId, subscriber.agentId],
      );
      const runId: string = planned.id;
      const sub = await subscribe(
        url,
        subscriber.apiKey,
        `subscription($id: UUID!) { runUpdated(runId: $id) { event status } }`,
        {
          id: runId,
        },
      );
      await sub.waitFor(1);
      const times: number[] = [];
      const origPush = sub.events.push.bind(sub.events);
      sub.events.push = (...items) => {
        for (const _ of items) times.push(performance.now());
        return origPush(...items);
      };
      let revokedAt = 0;
      const start = performance.now();
      for (
        let i = 0;
        i < 120 && !(await Promise.race([sub.done.then(() => true), sleep(0).then(() => false)]));
        i++
      ) {
        await pool.query(`select pg_notify($1, $2)`, [
          `runproof:run:${runId}`,
          JSON.stringify({ event: "run", tenant_id: subscriber.tenantId, run_id: runId, status: "running" }),
        ]);
        if (!revokedAt && performance.now() - start > 2000) {
          await pool.query(`select runproof_private.revoke_api_key($1, $2)`, [
            subscriber.tenantId,
            subscriber.keyId,
          ]);
          revokedAt = performance.now();
        }
        await sleep(100);
      }
      const done = await Promise.race([sub.done, sleep(100).then(() => null)]);
      sub.close();
      const after = times.filter((t) => t > revokedAt);
      const rev = {
        eventsAfterRevoke: after.length,
        eventsMoreThan5sAfter: after.filter((t) => t - revokedAt > 5000).length,
        lastEventAfterRevokeMs: after.length ? Math.round(after.at(-1)! - revokedAt) : 0,
        ended: done
          ? done.completed
            ? "completed"
            : `error ${done.errors?.[0]?.extensions?.code ?? "closed"}`
          : "still open after 12 s",
      };
      log(`revocation: ${JSON.stringify(rev)}`);
      results.revocation = rev;
    }
    results.rssEndMb = Math.round(server.rss() / MB);
    await pool.end();
  } finally {
    await server?.stop();
    await pgServer.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const json = JSON.stringify(results, null, 2);
  if (outFile) fs.writeFileSync(outFile, `${json}\n`);
  process.stdout.write(`${json}\n`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

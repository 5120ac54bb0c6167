// Helpers for end-to-end tests: a real worker, real HTTP servers on 127.0.0.1, and waiting on runs.
import http from "node:http";
import type { AddressInfo } from "node:net";
import type pg from "pg";
import { loadConfig, type Config } from "../../src/lib/config.ts";
import { createLogger } from "../../src/lib/log.ts";
import { startWorker, type WorkerOptions } from "../../src/worker.ts";

/** Config for tests: fast retries and crash detection, quiet logs. */
export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({
    RUNPROOF_LOG_LEVEL: process.env.RUNPROOF_TEST_LOG_LEVEL ?? "silent",
    RUNPROOF_RETRY_BASE_MS: "200",
    RUNPROOF_HEARTBEAT_MS: "300",
    RUNPROOF_STALE_WORKER_MS: "2000",
    ...env,
  });
}

export async function startTestWorker(
  url: string,
  opts: Partial<WorkerOptions> & { env?: Record<string, string> } = {},
) {
  const config = opts.config ?? testConfig(opts.env);
  return startWorker({
    connectionString: url,
    config,
    concurrency: 4,
    pollInterval: 200,
    logger: createLogger(config, "test-worker"),
    ...opts,
  });
}

export const TERMINAL = ["succeeded", "failed", "halted", "cancelled"];

/** Polls until the run reaches one of `statuses` (default: any final one). */
export async function waitForRun(
  pool: pg.Pool,
  runId: string,
  statuses = TERMINAL,
  timeoutMs = 30_000,
): Promise<Record<string, any>> {
  const deadline = Date.now() + timeoutMs;
  let last: Record<string, any> | undefined;
  while (Date.now() < deadline) {
    ({
      rows: [last],
    } = await pool.query(`select * from runproof.runs where id = $1`, [runId]));
    if (last && statuses.includes(last.status)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `run ${runId} did not reach ${statuses.join("|")} in ${timeoutMs} ms (last status ${last?.status})`,
  );
}

export interface Recorded {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  at: number;
}
export type Handler = (req: http.IncomingMessage, body: string, res: http.ServerResponse) => unknown;

/** A real HTTP server on 127.0.0.1 that logs every request it receives (its own record of side effects). */
export async function startHttpServer(
  routes: Record<string, Handler>,
): Promise<{ url: string; requests: Recorded[]; close(): Promise<void> }> {
  const requests: Recorded[] = [];
  const server = http.createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    requests.push({
      method: req.method ?? "",
      url: req.url ?? "",
      headers: req.headers,
      body,
      at: Date.now(),
    });
    const path = (req.url ?? "/").split("?")[0];
    const handler = routes[path];
    if (!handler) {
      res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: "not found" }));
      return;
    }
    await handler(req, body, res);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export const json = (res: http.ServerResponse, status: number, body: unknown) =>
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));

/** A tenant with an agent, created through the same SQL functions the CLI uses. */
export async function tenantWithAgent(
  pool: pg.Pool,
  opts: { budgetCents?: number; allowedSkills?: string[] } = {},
) {
  const {
    rows: [t],
  } = await pool.query(`select id from runproof_private.create_tenant($1, $2)`, [
    `t-${Math.random().toString(36).slice(2)}`,
    opts.budgetCents ?? 10000,
  ]);
  const {
    rows: [a],
  } = await pool.query(`select id from runproof.create_agent('agent', '', $2, $1)`, [
    t.id,
    opts.allowedSkills ?? null,
  ]);
  return { tenantId: t.id as string, agentId: a.id as string };
}

export async function enqueue(
  pool: pg.Pool,
  f: { tenantId: string; agentId: string },
  goal: string,
  plan: object | null,
  opts: { key?: string; maxAttempts?: number; origin?: string } = {},
): Promise<string> {
  const {
    rows: [r],
  } = await pool.query(`select id from runproof.enqueue_run($1, $2, $3, $4, $5, $6, $7)`, [
    f.tenantId,
    f.agentId,
    goal,
    opts.origin ?? "ava-test",
    plan,
    opts.key ?? null,
    opts.maxAttempts ?? 3,
  ]);
  return r.id;
}

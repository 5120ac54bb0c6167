// Helpers for the GraphQL tests: a real server on a free port, API-key tenants made
// with the same SQL functions the CLI uses, plain fetch for queries and a minimal
// graphql-ws (graphql-transport-ws) client on Node's built-in WebSocket.
import { Writable } from "node:stream";
import type pg from "pg";
import { createLogger } from "../../src/lib/log.ts";
import { startServer } from "../../src/server.ts";
import { registerSkills } from "./ledger.ts";
import { testConfig } from "./worker.ts";

export interface TestServer {
  url: string;
  /** JSON log lines the server wrote (pino), for asserting on what was logged. */
  logs: Record<string, unknown>[];
  stop(): Promise<void>;
}

export async function startTestServer(
  dbUrl: string,
  opts: { authCacheMs?: number; env?: Record<string, string>; readDatabaseUrl?: string } = {},
): Promise<TestServer> {
  const config = testConfig({ RUNPROOF_LOG_LEVEL: "info", ...opts.env });
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split("\n")) if (line.trim()) logs.push(JSON.parse(line));
      cb();
    },
  });
  const logger = createLogger(config, "graphql-test", sink);
  const server = await startServer({
    connectionString: dbUrl,
    config,
    port: 0,
    logger,
    authCacheMs: opts.authCacheMs,
    readDatabaseUrl: opts.readDatabaseUrl,
  });
  return { url: server.url, logs, stop: server.stop };
}

export interface ApiTenant {
  tenantId: string;
  agentId: string;
  apiKey: string;
  keyId: string;
}

/** A tenant with one agent and an API key, plus the test skills registered. */
export async function apiTenant(
  pool: pg.Pool,
  name = `t-${Math.random().toString(36).slice(2, 10)}`,
): Promise<ApiTenant> {
  await registerSkills(pool);
  const {
    rows: [t],
  } = await pool.query(`select id from runproof_private.create_tenant($1)`, [name]);
  const {
    rows: [k],
  } = await pool.query(`select key_id, api_key from runproof_private.create_api_key($1, 'graphql test')`, [
    t.id,
  ]);
  const {
    rows: [a],
  } = await pool.query(`select id from runproof.create_agent('agent', tenant_id => $1)`, [t.id]);
  return { tenantId: t.id, agentId: a.id, apiKey: k.api_key, keyId: k.key_id };
}

export interface GqlResponse<T = any> {
  status: number;
  headers: Headers;
  body: { data?: T; errors?: Array<{ message: string; path?: string[]; extensions?: Record<string, any> }> };
}

/** POSTs a GraphQL request; `key` null sends no Authorization header. */
export async function gql<T = any>(
  url: string,
  key: string | null,
  query: string,
  variables?: Record<string, unknown>,
): Promise<GqlResponse<T>> {
  const headers: Record<string, string> = { "content-type": "application/json", accept: "application/json" };
  if (key !== null) headers.authorization = `Bearer ${key}`;
  const res = await fetch(url, { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`non-JSON response ${res.status}: ${text.slice(0, 200)}`);
  }
  return { status: res.status, headers: res.headers, body };
}

/** Like gql, but fails unless the response has data and no errors. */
export async function gqlOk<T = any>(
  url: string,
  key: string,
  query: string,
  variables?: Record<string, unknown>,
): Promise<T> {
  const r = await gql<T>(url, key, query, variables);
  if (r.status !== 200 || r.body.errors || !r.body.data) {
    throw new Error(`GraphQL request failed (${r.status}): ${JSON.stringify(r.body)}`);
  }
  return r.body.data;
}

export interface Subscription {
  /** Every payload received (`next` messages), in order. */
  events: Array<{ data?: any; errors?: any[] }>;
  /** When each of `events` arrived (performance.now()). */
  times: number[];
  /** Resolves when the socket closes, with its close code and reason. */
  closed: Promise<{ code: number; reason: string; at: number }>;
  /** Resolves when the server completes the subscription or reports an error. */
  done: Promise<{ completed: boolean; errors?: any[] }>;
  /** Resolves once `count` payloads arrived (rejects after timeoutMs). */
  waitFor(count: number, timeoutMs?: number): Promise<void>;
  close(): void;
}

/** Subscribes over graphql-transport-ws with the API key in connection_init (as Ruru does). */
export function subscribe(
  url: string,
  key: string,
  query: string,
  variables?: Record<string, unknown>,
): Promise<Subscription> {
  const ws = new WebSocket(url.replace(/^http/, "ws"), "graphql-transport-ws");
  const events: Subscription["events"] = [];
  const times: number[] = [];
  let onClosed!: (v: { code: number; reason: string; at: number }) => void;
  const closed = new Promise<{ code: number; reason: string; at: number }>((r) => (onClosed = r));
  const waiters: Array<() => void> = [];
  let settle!: (v: { completed: boolean; errors?: any[] }) => void;
  const done = new Promise<{ completed: boolean; errors?: any[] }>((r) => (settle = r));
  return new Promise((resolve, reject) => {
    ws.addEventListener("open", () => {
      ws.send(JSON.stringify({ type: "connection_init", payload: { Authorization: `Bearer ${key}` } }));
    });
    ws.addEventListener("error", () => reject(new Error("WebSocket error")));
    ws.addEventListener("close", (ev) => {
      onClosed({ code: ev.code, reason: ev.reason, at: performance.now() });
      settle({ completed: false });
    });
    ws.addEventListener("message", (ev) => {
      const msg = JSON.parse(String(ev.data));
      switch (msg.type) {
        case "connection_ack":
          ws.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query, variables } }));
          resolve({
            events,
            times,
            closed,
            done,
            waitFor: (count, timeoutMs = 20_000) =>
              new Promise<void>((res, rej) => {
                const timer = setTimeout(
                  () => rej(new Error(`only ${events.length} of ${count} events in ${timeoutMs} ms`)),
                  timeoutMs,
                );
                const check = () => {
                  if (events.length >= count) {
                    clearTimeout(timer);
                    res();
                  } else waiters.push(check);
                };
                check();
              }),
            close: () => ws.close(),
          });
          break;
        case "next":
          events.push(msg.payload);
          times.push(performance.now());
          for (const w of waiters.splice(0)) w();
          break;
        case "error":
          settle({ completed: false, errors: msg.payload });
          // Let the server close first when it does (e.g. 4403 after a revoked key).
          setTimeout(() => ws.close(), 200);
          break;
        case "complete":
          settle({ completed: true });
          ws.close();
          break;
        case "ping":
          ws.send(JSON.stringify({ type: "pong" }));
          break;
      }
    });
  });
}

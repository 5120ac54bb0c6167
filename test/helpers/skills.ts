// Skill contexts and real local HTTP servers for the skill tests (no network beyond 127.0.0.1).
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import type pg from "pg";
import { loadConfig, type Config } from "../../src/lib/config.ts";
import type { SkillContext } from "../../src/skills/types.ts";

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig(env);
}

/** A pool that fails loudly: the skills under test must not touch the database. */
const noDatabase = new Proxy(
  {},
  {
    get() {
      throw new Error("this test has no database");
    },
  },
) as pg.Pool;

export function skillContext(overrides: Partial<SkillContext> = {}): SkillContext {
  const runId = overrides.runId ?? randomUUID();
  const planStep = overrides.planStep ?? 0;
  return {
    tenantId: randomUUID(),
    agentId: randomUUID(),
    runId,
    traceId: randomUUID(),
    planStep,
    stepIndex: planStep,
    idempotencyKey: `${runId}:${planStep}`,
    signal: new AbortController().signal,
    pool: noDatabase,
    config: testConfig(),
    ...overrides,
  };
}

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface TestServer {
  url: string;
  port: number;
  requests: ReceivedRequest[];
  close(): Promise<void>;
}

/** Starts a real HTTP server on 127.0.0.1; the handler sees the request with its body already read. */
export async function startServer(
  handler: (req: ReceivedRequest, res: http.ServerResponse) => void | Promise<void>,
): Promise<TestServer> {
  const requests: ReceivedRequest[] = [];
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const received = {
      method: req.method!,
      url: req.url!,
      headers: req.headers,
      body: Buffer.concat(chunks).toString("utf8"),
    };
    requests.push(received);
    try {
      await handler(received, res);
    } catch (err) {
      // The client may have gone away (timeouts, size limits): that is the point of those tests.
      if (!res.destroyed) res.destroy(err as Error);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function sendJson(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: http.OutgoingHttpHeaders = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

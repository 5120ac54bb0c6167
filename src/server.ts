// RunProof's GraphQL server (PostGraphile v5 + grafserv on node:http).
//
//   POST /graphql              GraphQL; needs Authorization: Bearer <api key>
//   GET  /graphql (text/html)  the Ruru explorer (no key needed to load the page;
//                              put the key in Ruru's Headers tab)
//   ws://.../graphql           subscriptions (graphql-ws); the key goes in the
//                              connection_init payload: {"Authorization": "Bearer <api key>"}
//
// PostGraphile connects as runproof_authenticator, never as the owner. Each
// request runs in a transaction with pgSettings { role: 'runproof_tenant',
// 'runproof.tenant_id': <the key's tenant> }, so row level security and the
// SQL functions' tenant checks decide what it can see and do.
import "./graphql/env.ts"; // first: sets GRAPHILE_ENV before grafast loads
import http, { type IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import pg from "pg";
import { postgraphile } from "postgraphile";
import { SafeError } from "postgraphile/grafast";
import { grafserv } from "postgraphile/grafserv/node";
import { ApiKeyAuthenticator, type AuthError } from "./graphql/auth.ts";
import { makeMaskError, newErrorId } from "./graphql/errors.ts";
import { checkJsonBody } from "./graphql/input-guard.ts";
import { makeRunProofPgService, makeRunProofPreset } from "./graphql/preset.ts";
import { ensureAuthenticator } from "./lib/authenticator.ts";
import type { Config } from "./lib/config.ts";
import { createLogger, type Logger } from "./lib/log.ts";

declare global {
  namespace Grafast {
    interface Context {
      /** The tenant of the request's API key. */
      runproofTenantId?: string;
    }
  }
}

export const GRAPHQL_PATH = "/graphql";
const TENANT_ROLE = "runproof_tenant";

export interface StartServerOptions {
  /** Owner (or superuser) URL of the RunProof database; used only to set up runproof_authenticator. */
  connectionString: string;
  config: Config;
  /** Defaults to config.port; 0 picks a free port. */
  port?: number;
  /** Defaults to 127.0.0.1. */
  host?: string;
  logger?: Logger;
  /** How long a successful API key look-up is cached, in ms (at most, and by default, 5000; 0 disables). */
  authCacheMs?: number;
}

export interface RunningServer {
  /** The GraphQL endpoint, e.g. http://127.0.0.1:5678/graphql. */
  url: string;
  stop(): Promise<void>;
}

/** What Ruru shows on first visit: where the key goes, and a run with its proof. */
const RURU_DEFAULT_QUERY = `# RunProof GraphQL API.
# Put your API key in the Headers tab below:
#   {"Authorization": "Bearer rp_..."}
# (create one with: runproof api-key create)

query RecentRunsWithProof {
  runs(first: 10) {
    totalCount
    nodes {
      id
      goal
      status
      originSystemId
      createdAt
      proof {
        integrityModel
        verificationStatus
        traceCount
        stepCount
        rootHash
        reason
      }
    }
  }
}
`;

export async function startServer(opts: StartServerOptions): Promise<RunningServer> {
  const logger = opts.logger ?? createLogger(opts.config, "graphql");
  const host = opts.host ?? "127.0.0.1";
  const port = opts.port ?? opts.config.port;

  const authenticatorUrl = await ensureAuthenticator(opts.connectionString, { log: (m) => logger.info(m) });
  const pool = new pg.Pool({ connectionString: authenticatorUrl, max: 10 });
  pool.on("error", (err) => logger.warn({ err }, "an idle database connection failed"));

  const apiKeys = new ApiKeyAuthenticator(pool, { cacheMs: opts.authCacheMs });
  // Tenants of HTTP requests, resolved by the processRequest middleware before any GraphQL runs.
  const tenantByRequest = new WeakMap<IncomingMessage, string>();

  const unauthorized = (error: AuthError) => ({
    type: "json" as const,
    statusCode: 401,
    headers: {
      "content-type": "application/json; charset=utf-8",
      "www-authenticate": 'Bearer realm="runproof"',
    },
    json: { errors: [{ message: error.message, extensions: { code: "UNAUTHENTICATED", hint: error.hint } }] },
  });

  const AuthPlugin: GraphileConfig.Plugin = {
    name: "RunProofApiKeyAuthPlugin",
    description: "RunProof: Authorization: Bearer <api key> → tenant, or HTTP 401",
    version: "1.0.0",
    grafserv: {
      middleware: {
        async processRequest(next, event) {
          const digest = event.requestDigest;
          // Only POST executes GraphQL (GET serves Ruru or is refused with 405): authenticate those.
          if (digest.path !== GRAPHQL_PATH || digest.method !== "POST") return next();
          const headers = digest.headers;
          const authorization = headers.authorization ?? headers.Authorization;
          let result: Awaited<ReturnType<typeof apiKeys.authenticate>>;
          try {
            result = await apiKeys.authenticate(authorization);
          } catch (err) {
            const errorId = newErrorId();
            logger.error({ err, errorId }, "API key look-up failed");
            return {
              type: "json",
              statusCode: 503,
              headers: { "content-type": "application/json; charset=utf-8" },
              json: {
                errors: [
                  {
                    message: `The API key could not be checked right now (error id ${errorId}); try again shortly.`,
                    extensions: { code: "SERVICE_UNAVAILABLE", errorId },
                  },
                ],
              },
            };
          }
          if (!result.ok) return unauthorized(result.error);
          const req = digest.requestContext.node?.req;
          if (req) tenantByRequest.set(req, result.tenantId);
          // Input Postgres would store altered or choke on (src/graphql/input-guard.ts): refuse it here.
          // The body is read once and kept for grafserv.
          const readBody = digest.getBody.bind(digest);
          let body: ReturnType<typeof readBody> | undefined;
          digest.getBody = () => (body ??= readBody());
          let read: Awaited<ReturnType<typeof readBody>>;
          try {
            read = await digest.getBody();
          } catch {
            return next(); // too large, or the client went away: grafserv answers that itself
          }
          const problem =
            read.type === "buffer" && /json/i.test(headers["content-type"] ?? headers["Content-Type"] ?? "")
              ? checkJsonBody(read.buffer)
              : null;
          if (problem) {
            return {
              type: "json" as const,
              statusCode: 400,
              headers: { "content-type": "application/json; charset=utf-8" },
              json: { errors: [{ message: problem.message, extensions: { code: problem.code } }] },
            };
          }
          return next();
        },
      },
    },
  };

  const pgService = makeRunProofPgService(pool, { pubsub: true });
  const preset = makeRunProofPreset({
    pgService,
    extra: {
      plugins: [AuthPlugin],
      grafserv: {
        graphqlPath: GRAPHQL_PATH,
        graphiql: true,
        graphiqlOnGraphQLGET: true,
        graphiqlPath: GRAPHQL_PATH,
        graphqlOverGET: false,
        websockets: true,
        watch: false,
        // A plan may be up to 1 MiB (runproof_private.validate_plan); leave room for the rest.
        maxRequestLength: 2 * 1024 * 1024,
        maskError: makeMaskError(logger),
      },
      grafast: {
        explain: false,
        async context(requestContext) {
          let tenantId = requestContext.node?.req ? tenantByRequest.get(requestContext.node.req) : undefined;
          if (!tenantId && requestContext.ws) {
            // Subscriptions: the key comes in graphql-ws's connection_init payload.
            const params = requestContext.ws.normalizedConnectionParams;
            const result = await apiKeys.authenticate(params?.authorization);
            if (!result.ok)
              throw new SafeError(result.error.message, { code: "UNAUTHENTICATED", hint: result.error.hint });
            tenantId = result.tenantId;
          }
          if (!tenantId) {
            throw new SafeError("Authentication required: send the header Authorization: Bearer <api key>", {
              code: "UNAUTHENTICATED",
            });
          }
          return {
            pgSettings: { role: TENANT_ROLE, "runproof.tenant_id": tenantId },
            runproofTenantId: tenantId,
          };
        },
      },
      ruru: {
        // RuruClientConfig marks every prop required, though Ruru treats them as optional.
        clientConfig: {
          defaultQuery: RURU_DEFAULT_QUERY,
          defaultHeaders: JSON.stringify({ Authorization: "Bearer <your API key>" }, null, 2),
        } as Partial<NonNullable<GraphileConfig.Preset["ruru"]>["clientConfig"]> as never,
      },
    },
  });

  const pgl = postgraphile(preset);
  const server = http.createServer();
  // ws connections outlive server.close(); keep them to end them on stop().
  const upgraded = new Set<Duplex>();
  server.on("upgrade", (_req: IncomingMessage, socket: Duplex) => {
    upgraded.add(socket);
    socket.once("close", () => upgraded.delete(socket));
  });

  try {
    // Build the schema now, so that a broken database fails startup, not the first request.
    await pgl.getSchema();
    const serv = pgl.createServ(grafserv);
    await serv.addTo(server);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    await Promise.resolve(pgl.release()).catch(() => {});
    await Promise.resolve(pgService.release?.()).catch(() => {});
    await pool.end().catch(() => {});
    throw err;
  }

  const address = server.address();
  const boundPort = typeof address === "object" && address ? address.port : port;
  const urlHost = host.includes(":") ? `[${host}]` : host;
  const url = `http://${urlHost}:${boundPort}${GRAPHQL_PATH}`;
  logger.info({ url }, "GraphQL server listening (Ruru explorer at the same URL in a browser)");

  let stopping: Promise<void> | undefined;
  return {
    url,
    stop: () =>
      (stopping ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        for (const socket of upgraded) socket.destroy();
        await closed;
        // PostGraphile releases grafserv (and its WebSocket server) itself; then the
        // pg service, whose subscriber holds a LISTEN connection, then the pool.
        await Promise.resolve(pgl.release()).catch((err: unknown) =>
          logger.warn({ err }, "releasing PostGraphile failed"),
        );
        await Promise.resolve(pgService.release?.()).catch((err: unknown) =>
          logger.warn({ err }, "releasing the pg service failed"),
        );
        await pool.end().catch((err: unknown) => logger.warn({ err }, "closing the database pool failed"));
        logger.info("GraphQL server stopped");
      })()),
  };
}

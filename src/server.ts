// RunProof's GraphQL server (PostGraphile v5 + grafserv on node:http).
//
//   POST /graphql              GraphQL; needs Authorization: Bearer <api key>
//   GET  /                     the web run explorer (src/explorer.ts, web/): runs, timelines,
//                              proofs, bundles verified in the browser; it signs in with an API key
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
import { ApiKeyAuthenticator } from "./graphql/auth.ts";
import { makeMaskError } from "./graphql/errors.ts";
import { QueryLimiter } from "./graphql/limits.ts";
import { makeRunProofPgService, makeRunProofPreset } from "./graphql/preset.ts";
import { openReadReplica, operationTypeOf, type ReadReplica } from "./graphql/read-replica.ts";
import { makeRequestGuard } from "./graphql/request-guard.ts";
import { KeyRevocationWatcher, listenForRevocations } from "./graphql/revocation.ts";
import { TenantGate } from "./graphql/tenant-limits.ts";
import { attachWebSockets } from "./graphql/websocket.ts";
import { handleExplorerRequest } from "./explorer.ts";
import { ensureAuthenticator } from "./lib/authenticator.ts";
import type { Config } from "./lib/config.ts";
import { createLogger, type Logger } from "./lib/log.ts";

declare global {
  namespace Grafast {
    interface Context {
      /** The tenant of the request's API key. */
      runproofTenantId?: string;
      /** A query's read replica pool (with --read-url), for Run.bundle's own snapshot. */
      runproofReadPool?: pg.Pool;
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
  /** How long a successful API key look-up is cached, in ms (default RUNPROOF_API_KEY_RECHECK_MS; at most 5000; 0 disables). */
  authCacheMs?: number;
  /**
   * A read-only replica (streaming hot standby) of the database: GraphQL queries run there,
   * mutations and subscriptions on the primary (src/graphql/read-replica.ts). Any URL of the
   * standby's database: it is used as runproof_authenticator, with the primary's password.
   */
  readDatabaseUrl?: string;
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
# (create one with: npx runproof api-key create)

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
  const pool = new pg.Pool({ connectionString: authenticatorUrl, max: opts.config.graphql.poolSize });
  // pool.end() resolves once it has told its clients to end, not once their sockets closed: a
  // Postgres stopped right after (npm start's Ctrl-C) terminates them, which is expected then.
  let closingPool = false;
  pool.on("error", (err) =>
    closingPool
      ? logger.debug({ err }, "a database connection ended while the server stopped")
      : logger.warn({ err }, "an idle database connection failed"),
  );
  let replica: ReadReplica | undefined;
  if (opts.readDatabaseUrl) {
    try {
      replica = await openReadReplica({
        readUrl: opts.readDatabaseUrl,
        authenticatorUrl,
        logger,
        poolSize: opts.config.graphql.poolSize,
      });
    } catch (err) {
      await pool.end().catch(() => {});
      throw err;
    }
  }

  const limits = opts.config.graphql;
  const apiKeys = new ApiKeyAuthenticator(pool, { cacheMs: opts.authCacheMs ?? limits.apiKeyRecheckMs });
  // Open subscriptions are re-checked against the database on this interval (revocation.ts).
  const watcher = new KeyRevocationWatcher(apiKeys, limits.apiKeyRecheckMs, (err) =>
    logger.warn({ err }, "re-checking the API keys of open subscriptions failed"),
  );
  const gate = new TenantGate({
    maxConcurrent: limits.tenantMaxConcurrent,
    maxQueued: limits.tenantMaxQueued,
    // A queued request waits at most as long as one running request may take.
    queueTimeoutMs: limits.statementTimeoutMs,
    ratePerSecond: limits.tenantRatePerSecond,
    costPerSecond: limits.tenantCostPerSecond,
    maxSubscriptions: limits.tenantMaxSubscriptions,
  });
  let limiter: QueryLimiter | undefined;
  const guard = makeRequestGuard({
    graphqlPath: GRAPHQL_PATH,
    maxBodyBytes: limits.maxBodyBytes,
    auth: apiKeys,
    gate,
    limiter: () => {
      if (!limiter) throw new Error("the GraphQL schema is not built yet");
      return limiter;
    },
    logger,
  });
  // Every statement of a tenant's request is cancelled after this (SQLSTATE 57014).
  const statementTimeout = String(limits.statementTimeoutMs);

  const pgService = makeRunProofPgService(pool, { pubsub: true });
  // A key revoked or deleted in the database (NOTIFY runproof:api_keys): forget cached look-ups
  // and re-check the keys of open subscriptions now, rather than at the next interval.
  const stopListening = pgService.pgSubscriber
    ? listenForRevocations(
        pgService.pgSubscriber,
        () => {
          apiKeys.forget();
          void watcher.recheckNow();
        },
        (err) =>
          logger.warn({ err }, "listening for API key revocations failed; the interval re-check remains"),
      )
    : async () => {};
  const preset = makeRunProofPreset({
    pgService,
    pageSize: limits.maxPageSize,
    extra: {
      plugins: [guard.plugin],
      grafserv: {
        graphqlPath: GRAPHQL_PATH,
        graphiql: true,
        graphiqlOnGraphQLGET: true,
        graphiqlPath: GRAPHQL_PATH,
        graphqlOverGET: false,
        websockets: true,
        watch: false,
        // A plan may be up to 1 MiB (runproof_private.validate_plan); the default 2 MiB leaves room for the rest.
        maxRequestLength: limits.maxBodyBytes,
        maskError: makeMaskError(logger, { statementTimeoutMs: limits.statementTimeoutMs }),
      },
      grafast: {
        explain: false,
        async context(requestContext, args) {
          // Queries read from the replica when there is one; mutations and subscriptions never do.
          const onReplica =
            replica && operationTypeOf(args?.document, args?.operationName) === "query"
              ? { withPgClient: replica.withPgClient, runproofReadPool: replica.pool }
              : {};
          const identity = guard.identityOf(requestContext.node?.req);
          let tenantId = identity && "tenantId" in identity ? identity.tenantId : undefined;
          if (!tenantId && requestContext.ws) {
            // Subscriptions: the key comes in graphql-ws's connection_init payload (websocket.ts has
            // already checked it, its rate and the document; this is the cached look-up again).
            const params = requestContext.ws.normalizedConnectionParams;
            const result = await apiKeys.authenticate(params?.authorization);
            if (!result.ok)
              throw new SafeError(result.error.message, { code: result.error.code, hint: result.error.hint });
            tenantId = result.tenantId;
          }
          if (!tenantId && identity && "anonymous" in identity) {
            // Introspection only (request-guard.ts): no tenant, so row level security shows nothing.
            return { pgSettings: { role: TENANT_ROLE, statement_timeout: statementTimeout }, ...onReplica };
          }
          if (!tenantId) {
            throw new SafeError("Authentication required: send the header Authorization: Bearer <api key>", {
              code: "UNAUTHENTICATED",
            });
          }
          return {
            pgSettings: {
              role: TENANT_ROLE,
              "runproof.tenant_id": tenantId,
              statement_timeout: statementTimeout,
            },
            runproofTenantId: tenantId,
            ...onReplica,
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

  let websockets: ReturnType<typeof attachWebSockets> | undefined;
  try {
    // Build the schema now, so that a broken database fails startup, not the first request.
    const schema = await pgl.getSchema();
    limiter = new QueryLimiter(schema, limits);
    const serv = pgl.createServ(grafserv);
    // The web explorer (explorer.ts) answers / and /explorer/*; grafserv everything else. Our own
    // WebSocket handler (websocket.ts) instead of grafserv's: the same limits as a POST.
    const grafservHandler = serv.createHandler();
    server.on("request", (req, res) => {
      if (handleExplorerRequest(req, res, (err) => logger.error({ err }, "building the web explorer failed")))
        return;
      void grafservHandler(req, res);
    });
    websockets = attachWebSockets({
      server,
      serv,
      path: GRAPHQL_PATH,
      maxPayload: limits.maxBodyBytes,
      admit: guard.admitSubscription,
      watcher,
      onError: (err) => logger.error({ err }, "a WebSocket message failed"),
    });
    watcher.start();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    watcher.stop();
    websockets?.close();
    await stopListening().catch(() => {});
    await Promise.resolve(pgl.release()).catch(() => {});
    await Promise.resolve(pgService.release?.()).catch(() => {});
    await pool.end().catch(() => {});
    await replica?.release();
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
        watcher.stop();
        websockets?.close();
        await stopListening().catch(() => {});
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
        closingPool = true;
        await pool.end().catch((err: unknown) => logger.warn({ err }, "closing the database pool failed"));
        await replica?.release();
        logger.info("GraphQL server stopped");
      })()),
  };
}

// Everything a GraphQL request passes before grafserv and Grafast see it, on POST /graphql
// (grafserv processRequest middleware) and for each WebSocket subscribe (websocket.ts admit):
//
//   1. body size        Content-Length or the bytes read over RUNPROOF_GRAPHQL_MAX_BODY_BYTES:
//                       413 BODY_TOO_LARGE
//   2. the API key      401 UNAUTHENTICATED / API_KEY_EXPIRED (auth.ts); a request that only
//                       introspects the schema (__schema, __type, __typename) needs no key, so
//                       Ruru's docs pane loads before a key is typed in
//      and the rate     429 RATE_LIMITED with Retry-After (tenant-limits.ts), before the body is
//                       read, so that a flood of refused requests costs little
//   3. the bytes        every content type: not UTF-8 400 INVALID_UTF8; JSON: lone surrogates
//                       400 INVALID_UNICODE, nesting 400 JSON_TOO_DEEP (input-guard.ts)
//   4. the document     400 QUERY_NESTING_TOO_DEEP, ALIAS_/DEPTH_/FIELD_/PAGE_SIZE_/
//                       COST_LIMIT_EXCEEDED (limits.ts); its cost (a refused one: the cost limit)
//                       against the tenant's cost per second, 429 COST_RATE_LIMITED
//   5. a slot           the tenant's concurrent requests, queued in order, 429
//                       TOO_MANY_CONCURRENT_REQUESTS beyond the queue (tenant-limits.ts)
//
// A 429 is answered once its Retry-After has passed (see tarpit below).
// GET /graphql serves Ruru to browsers; GraphQL over GET is refused (405 METHOD_NOT_ALLOWED).
import type { IncomingMessage } from "node:http";
import type { JSONObject, JSONResult } from "postgraphile/grafserv";
import { GraphQLError } from "postgraphile/graphql";
import type { Logger } from "../lib/log.ts";
import type { ApiKeyAuthenticator, AuthError, AuthResult } from "./auth.ts";
import { newErrorId } from "./errors.ts";
import { checkJsonValue, decodeUtf8, type InputProblem } from "./input-guard.ts";
import type { LimitProblem, QueryLimiter } from "./limits.ts";
import type { GateRefusal, TenantGate } from "./tenant-limits.ts";
import type { SubscribeAdmission, SubscribeRequest } from "./websocket.ts";

/** Who a request acts for: a tenant, or nobody (introspection only). */
export type RequestIdentity = { tenantId: string } | { anonymous: true };

export interface RequestGuardOptions {
  graphqlPath: string;
  maxBodyBytes: number;
  auth: ApiKeyAuthenticator;
  gate: TenantGate;
  /** The limiter; available once the schema is built (before the server listens). */
  limiter: () => QueryLimiter;
  logger: Logger;
}

type JsonResult = JSONResult;

const JSON_HEADERS = { "content-type": "application/json; charset=utf-8" };

function refusal(
  statusCode: number,
  message: string,
  extensions: Record<string, unknown>,
  headers: Record<string, string> = {},
): JsonResult {
  return {
    type: "json",
    statusCode,
    headers: { ...JSON_HEADERS, ...headers },
    json: { errors: [{ message, extensions: extensions as JSONObject }] },
  };
}

const unauthorized = (error: AuthError) =>
  refusal(
    401,
    error.message,
    { code: error.code, hint: error.hint },
    { "www-authenticate": 'Bearer realm="runproof"' },
  );
const inputRefusal = (p: InputProblem) => refusal(400, p.message, { code: p.code, hint: p.hint });
const limitRefusal = (p: LimitProblem) =>
  refusal(400, p.message, { code: p.code, hint: p.hint, limit: p.limit, actual: p.actual });
const gateRefusal = (r: GateRefusal) =>
  refusal(
    r.status,
    r.message,
    { code: r.code, hint: r.hint, limit: r.limit },
    { "retry-after": String(r.retryAfter) },
  );

/** The parts of a GraphQL request the checks look at. */
interface GraphQLParams {
  query: string;
  operationName?: string | null;
  variables?: Record<string, unknown> | null;
}

/** How many 429 responses may be held back (tarpit) at once, all tenants together. */
const MAX_HELD = 1000;

/** Anonymous introspection shares one rate bucket per client address. */
const anonymousKey = (req: IncomingMessage | undefined) => `anonymous:${req?.socket.remoteAddress ?? "?"}`;

export function makeRequestGuard(opts: RequestGuardOptions) {
  const identities = new WeakMap<IncomingMessage, RequestIdentity>();
  const { logger } = opts;

  const tooLarge = () =>
    refusal(413, `The request body is larger than the limit of ${opts.maxBodyBytes} bytes.`, {
      code: "BODY_TOO_LARGE",
      hint: "send a smaller request: split large plans or inputs over several runs",
      limit: opts.maxBodyBytes,
    });

  // 429s are answered when their Retry-After has passed: a client that retries at once (a flood)
  // then sends one request per Retry-After per connection instead of spinning on refusals. At
  // most MAX_HELD are held at a time; beyond that they are answered at once.
  let held = 0;
  async function tarpit(r: GateRefusal): Promise<JSONResult> {
    if (held < MAX_HELD) {
      held++;
      try {
        await new Promise((resolve) => setTimeout(resolve, Math.min(r.retryAfter, 1) * 1000));
      } finally {
        held--;
      }
    }
    return gateRefusal(r);
  }

  async function authenticate(
    authorization: string | string[] | undefined,
  ): Promise<AuthResult | JsonResult> {
    try {
      return await opts.auth.authenticate(authorization);
    } catch (err) {
      const errorId = newErrorId();
      logger.error({ err, errorId }, "API key look-up failed");
      return refusal(
        503,
        `The API key could not be checked right now (error id ${errorId}); try again shortly.`,
        {
          code: "SERVICE_UNAVAILABLE",
          errorId,
        },
      );
    }
  }

  const plugin: GraphileConfig.Plugin = {
    name: "RunProofRequestGuardPlugin",
    description: "RunProof: API key, body, rate, query limits and per-tenant concurrency before GraphQL runs",
    version: "1.0.0",
    grafserv: {
      middleware: {
        async processRequest(next, event) {
          const digest = event.requestDigest;
          if (digest.path !== opts.graphqlPath) return next();
          const header = (name: string) => {
            for (const [k, v] of Object.entries(digest.headers)) if (k.toLowerCase() === name) return v;
            return undefined;
          };
          if (digest.method === "GET" || digest.method === "HEAD") {
            // Browsers get Ruru; GraphQL over GET is not offered (it would bypass the body checks).
            if (/text\/html/i.test(header("accept") ?? "")) return next();
            return refusal(405, "GraphQL over GET is not supported; send a POST with a JSON body.", {
              code: "METHOD_NOT_ALLOWED",
              hint: 'POST /graphql with content-type: application/json and {"query": "..."}',
            });
          }
          if (digest.method !== "POST") return next();
          const req = digest.requestContext.node?.req;
          const res = digest.requestContext.node?.res;

          // 1. Body size, before reading it when the client says how big it is.
          const length = Number(header("content-length"));
          if (Number.isFinite(length) && length > opts.maxBodyBytes) return tooLarge();

          // 2. The key, and the tenant's rate: before the body is read or parsed, so that a flood
          // of refused requests costs as little as possible.
          const auth = await authenticate(header("authorization"));
          if ("type" in auth) return auth;
          if (auth.ok) {
            const rate = await opts.gate.checkRate(auth.tenantId);
            if (rate) return await tarpit(rate);
          }

          // 3. The bytes. The body is read once here and handed to grafserv as read.
          let raw: Awaited<ReturnType<typeof digest.getBody>>;
          try {
            raw = await digest.getBody();
          } catch (e) {
            if ((e as { extensions?: { statusCode?: number } }).extensions?.statusCode === 413)
              return tooLarge();
            return next(); // the client went away; grafserv answers whatever is left
          }
          const contentType = (header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
          let params: GraphQLParams | null = null;
          if (raw.type === "buffer") {
            const decoded = decodeUtf8(raw.buffer);
            if ("problem" in decoded) return inputRefusal(decoded.problem);
            if (contentType === "application/json") {
              let body: unknown;
              try {
                body = JSON.parse(decoded.text);
              } catch {
                digest.getBody = () => raw;
                return next(); // grafserv: 400 "Parsing failed"
              }
              const problem = checkJsonValue(body);
              if (problem) return inputRefusal(problem);
              // grafserv takes the parsed body as it is: no second JSON.parse.
              digest.getBody = () => ({ type: "json", json: body as never });
              params = paramsOf(body);
            } else {
              digest.getBody = () => raw;
              if (contentType === "application/graphql") params = { query: decoded.text };
            }
          } else {
            digest.getBody = () => raw;
          }

          const limiter = opts.limiter();
          const analysis = params ? limiter.analyze(params) : null;
          if (!auth.ok) {
            // Reading the schema is public (schema.graphql is too): Ruru fetches it before a key is set.
            if (!analysis?.introspectionOnly) return unauthorized(auth.error);
            const rate = await opts.gate.checkRate(anonymousKey(req));
            if (rate) return await tarpit(rate);
            if (analysis.problem) return limitRefusal(analysis.problem);
            if (req) identities.set(req, { anonymous: true });
            return next();
          }

          // 4-5. Document (and its cost against the tenant's cost per second), slot. A refused
          // document is charged the cost limit (it asked for at least that) and refused for what
          // it is; a loop of refused queries then runs into COST_RATE_LIMITED like a loop of
          // expensive ones.
          if (analysis) {
            const costly = analysis.problem
              ? await opts.gate.chargeRefused(
                  auth.tenantId,
                  refusedCharge(analysis.problem, limiter.limits.maxCost),
                )
              : analysis.cost
                ? await opts.gate.checkCost(auth.tenantId, analysis.cost)
                : null;
            if (costly) return await tarpit(costly);
            if (analysis.problem) return limitRefusal(analysis.problem);
          }
          const abort = new AbortController();
          const onClose = () => abort.abort();
          res?.once("close", onClose);
          const admission = await opts.gate.acquire(auth.tenantId, abort.signal);
          if (!admission.ok) {
            res?.off("close", onClose);
            return await tarpit(admission.refusal);
          }
          if (req) identities.set(req, { tenantId: auth.tenantId });
          try {
            return await next();
          } finally {
            res?.off("close", onClose);
            admission.release();
          }
        },
      },
    },
  };

  /** The checks of one WebSocket subscribe message (the socket's key is in connection_init). */
  async function admitSubscription(request: SubscribeRequest): Promise<SubscribeAdmission> {
    const errors = (message: string, extensions: Record<string, unknown>) => ({
      errors: [new GraphQLError(message, { extensions })],
    });
    const auth = await opts.auth.authenticate(request.authorization).catch((err: unknown) => {
      const errorId = newErrorId();
      logger.error({ err, errorId }, "API key look-up failed");
      return { ok: false as const, unavailable: errorId };
    });
    if ("unavailable" in auth) {
      return errors(
        `The API key could not be checked right now (error id ${auth.unavailable}); try again shortly.`,
        {
          code: "SERVICE_UNAVAILABLE",
        },
      );
    }
    if (!auth.ok) return errors(auth.error.message, { code: auth.error.code, hint: auth.error.hint });
    const params = paramsOf(request.payload);
    const analysis = params ? opts.limiter().analyze(params) : null;
    if (analysis?.operationType && analysis.operationType !== "subscription") {
      return errors("Only subscriptions run over WebSocket; send queries and mutations with POST /graphql.", {
        code: "SUBSCRIPTIONS_ONLY",
        hint: "POST queries and mutations to /graphql (they get the same limits and the key's rate there)",
      });
    }
    const rate = await opts.gate.checkRate(auth.tenantId);
    if (rate) return errors(rate.message, { code: rate.code, hint: rate.hint, limit: rate.limit });
    if (analysis) {
      const costly = analysis.problem
        ? await opts.gate.chargeRefused(
            auth.tenantId,
            refusedCharge(analysis.problem, opts.limiter().limits.maxCost),
          )
        : analysis.cost
          ? await opts.gate.checkCost(auth.tenantId, analysis.cost)
          : null;
      if (costly)
        return errors(costly.message, { code: costly.code, hint: costly.hint, limit: costly.limit });
      if (analysis.problem) {
        const p = analysis.problem;
        return errors(p.message, { code: p.code, hint: p.hint, limit: p.limit, actual: p.actual });
      }
    }
    const admission = opts.gate.openSubscription(auth.tenantId);
    if (!admission.ok) {
      const r = admission.refusal;
      return errors(r.message, { code: r.code, hint: r.hint, limit: r.limit });
    }
    return { release: admission.release };
  }

  return {
    plugin,
    admitSubscription,
    /** Who the HTTP request acts for, once the guard let it through. */
    identityOf: (req: IncomingMessage | undefined): RequestIdentity | undefined =>
      req ? identities.get(req) : undefined,
  };
}

/** What a refused document is charged against the tenant's cost per second. */
function refusedCharge(problem: LimitProblem, maxCost: number): number {
  return problem.code === "COST_LIMIT_EXCEEDED"
    ? Math.max(maxCost, Math.min(problem.actual ?? maxCost, 10 * maxCost))
    : maxCost;
}

function paramsOf(body: unknown): GraphQLParams | null {
  if (!body || typeof body !== "object" || Array.isArray(body)) return null;
  const { query, operationName, variables } = body as Record<string, unknown>;
  if (typeof query !== "string") return null;
  return {
    query,
    operationName: typeof operationName === "string" ? operationName : null,
    variables:
      variables && typeof variables === "object" && !Array.isArray(variables) ? (variables as never) : null,
  };
}

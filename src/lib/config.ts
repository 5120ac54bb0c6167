// Process configuration, read once from the environment. Every knob has a
// default that works on a laptop; a bad value fails at startup with the
// variable's name, not later inside a job.
import { z } from "zod";

export interface Config {
  databaseUrl: string | undefined;
  /** Lowercase hostnames or host:port pairs; ["*"] allows every host. */
  httpAllowedHosts: string[];
  httpMaxResponseBytes: number;
  httpTimeoutMs: number;
  /** OpenAI-compatible base URL without a trailing slash, e.g. http://127.0.0.1:8080/v1. */
  llmBaseUrl: string | undefined;
  llmApiKey: string | undefined;
  llmModel: string;
  llmTimeoutMs: number;
  llmCentsPer1kTokens: number;
  planner: "builtin" | "llm";
  workerConcurrency: number;
  heartbeatMs: number;
  staleWorkerMs: number;
  retryBaseMs: number;
  /** When the worker applies payload retention (crontab time fields). */
  retentionSchedule: string;
  checkpoint: CheckpointConfig;
  port: number;
  logLevel: LogLevel;
  /** "auto": human-readable on a terminal, JSON lines otherwise. */
  logFormat: LogFormat;
  graphql: GraphQLConfig;
}

/** Checkpoints of the tenants' logs (tasks/checkpoint.ts, src/lib/anchors.ts; docs/proof-format.md section 14). */
export interface CheckpointConfig {
  /** When the worker signs the logs that grew (crontab time fields; default every minute). */
  schedule: string;
  /** The Ed25519 private key (PKCS#8 PEM), or the file holding it; never stored in the database. */
  key: string | undefined;
  keyFile: string | undefined;
  /** The key's name in the signature line, and the origin prefix: a log's origin is <name>/<tenant id>. */
  keyName: string;
  anchors: AnchorConfig[];
  retryBaseMs: number;
  retryMaxMs: number;
}
export type AnchorConfig =
  | { name: string; kind: "directory"; path: string }
  | { name: string; kind: "witness"; url: string; key: string }
  | { name: string; kind: "rfc3161"; url: string };

const anchorName = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,62}$/, "an anchor name is lower-case letters, digits, _ and -");
const anchorsSchema = z.array(
  z.discriminatedUnion("kind", [
    z.strictObject({ name: anchorName, kind: z.literal("directory"), path: z.string().min(1) }),
    z.strictObject({ name: anchorName, kind: z.literal("witness"), url: z.url(), key: z.string().min(1) }),
    z.strictObject({ name: anchorName, kind: z.literal("rfc3161"), url: z.url() }),
  ]),
);

/** What one request and one tenant may ask of the GraphQL server (src/graphql/limits.ts, tenant-limits.ts). */
export interface GraphQLConfig {
  /** Connections of the server's pool (and of its read replica's). */
  poolSize: number;
  maxBodyBytes: number;
  maxDepth: number;
  maxAliases: number;
  maxFields: number;
  maxCost: number;
  maxPageSize: number;
  statementTimeoutMs: number;
  tenantMaxConcurrent: number;
  tenantMaxQueued: number;
  tenantRatePerSecond: number;
  tenantCostPerSecond: number;
  tenantMaxSubscriptions: number;
  /** How long a revoked or expired API key may go on working: key cache TTL and subscription re-check interval. */
  apiKeyRecheckMs: number;
}

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ["auto", "json", "pretty"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

const int = (def: number, min: number, max: number) =>
  z.coerce
    .number({ error: "must be a number" })
    .int("must be a whole number")
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`)
    .default(def);

const httpUrl = z
  .url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" })
  // Callers append paths like "/chat/completions"; a trailing slash would double it.
  .transform((u) => u.replace(/\/+$/, ""));

// A hostname, an IPv4 address or a bracketed IPv6 address, optionally with :port; or "*".
const HOST_ENTRY =
  /^(\*|(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])(:\d{1,5})?$/;

const hostList = z
  .string()
  .transform((s) =>
    s
      .split(",")
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
  )
  .check((ctx) => {
    for (const h of ctx.value) {
      if (!HOST_ENTRY.test(h)) {
        ctx.issues.push({
          code: "custom",
          input: ctx.value,
          message: `"${h}" is not a hostname, host:port or "*"`,
        });
      }
    }
  })
  .default(["127.0.0.1", "localhost"]);

/** Keys are the environment variable names, so zod's issue paths name the variable. */
export const configSchema = z
  .object({
    DATABASE_URL: z.string().optional(),
    RUNPROOF_HTTP_ALLOWED_HOSTS: hostList,
    RUNPROOF_HTTP_MAX_RESPONSE_BYTES: int(1048576, 1, 1024 * 1024 * 1024),
    RUNPROOF_HTTP_TIMEOUT_MS: int(10000, 1, 3600000),
    RUNPROOF_LLM_BASE_URL: httpUrl.optional(),
    RUNPROOF_LLM_API_KEY: z.string().optional(),
    RUNPROOF_LLM_MODEL: z.string().default("gpt-4o-mini"),
    RUNPROOF_LLM_TIMEOUT_MS: int(30000, 1, 3600000),
    RUNPROOF_LLM_CENTS_PER_1K_TOKENS: z.coerce
      .number({ error: "must be a number" })
      .min(0, "must not be negative")
      .default(0.1),
    RUNPROOF_PLANNER: z.enum(["builtin", "llm"], { error: 'must be "builtin" or "llm"' }).default("builtin"),
    RUNPROOF_WORKER_CONCURRENCY: int(4, 1, 1000),
    RUNPROOF_HEARTBEAT_MS: int(2000, 10, 3600000),
    RUNPROOF_STALE_WORKER_MS: int(10000, 10, 86400000),
    RUNPROOF_RETRY_BASE_MS: int(1000, 0, 3600000),
    // graphile-worker crontab time fields (minute hour day month weekday).
    RUNPROOF_RETENTION_SCHEDULE: z
      .string()
      .regex(/^\S+( \S+){4}$/, 'must be five crontab fields, e.g. "*/15 * * * *"')
      .default("*/15 * * * *"),
    RUNPROOF_CHECKPOINT_SCHEDULE: z
      .string()
      .regex(/^\S+( \S+){4}$/, 'must be five crontab fields, e.g. "* * * * *"')
      .default("* * * * *"),
    RUNPROOF_CHECKPOINT_KEY: z.string().optional(),
    RUNPROOF_CHECKPOINT_KEY_FILE: z.string().optional(),
    RUNPROOF_CHECKPOINT_KEY_NAME: z
      .string()
      .regex(/^[^\s+]+$/, "must be a key name without spaces or '+', e.g. runproof.example.com/log")
      .default("runproof.local/log"),
    RUNPROOF_CHECKPOINT_ANCHORS: z
      .string()
      .default("[]")
      .transform((v, ctx) => {
        try {
          const parsed = anchorsSchema.safeParse(JSON.parse(v));
          if (parsed.success) return parsed.data as AnchorConfig[];
          ctx.addIssue({
            code: "custom",
            message: `must be a JSON array of anchors: ${parsed.error.issues[0]?.message}`,
          });
        } catch {
          ctx.addIssue({ code: "custom", message: "must be a JSON array of anchors" });
        }
        return z.NEVER;
      }),
    RUNPROOF_ANCHOR_RETRY_BASE_MS: int(5000, 1, 3600000),
    RUNPROOF_ANCHOR_RETRY_MAX_MS: int(3600000, 1, 86400000),
    RUNPROOF_PORT: int(5678, 0, 65535),
    RUNPROOF_GRAPHQL_MAX_BODY_BYTES: int(2 * 1024 * 1024, 1024, 64 * 1024 * 1024),
    RUNPROOF_GRAPHQL_MAX_DEPTH: int(12, 2, 100),
    RUNPROOF_GRAPHQL_MAX_ALIASES: int(20, 0, 10_000),
    RUNPROOF_GRAPHQL_MAX_FIELDS: int(500, 10, 100_000),
    RUNPROOF_GRAPHQL_MAX_COST: int(100_000, 100, 1e15),
    RUNPROOF_GRAPHQL_MAX_PAGE_SIZE: int(100, 1, 10_000),
    RUNPROOF_GRAPHQL_STATEMENT_TIMEOUT_MS: int(10_000, 100, 3_600_000),
    RUNPROOF_GRAPHQL_POOL_SIZE: int(10, 1, 500),
    RUNPROOF_TENANT_MAX_CONCURRENT: int(2, 1, 1000),
    RUNPROOF_TENANT_MAX_QUEUED: int(16, 0, 100_000),
    RUNPROOF_TENANT_RATE_PER_SECOND: int(50, 1, 1_000_000),
    RUNPROOF_TENANT_COST_PER_SECOND: int(100_000, 100, 1e15),
    RUNPROOF_TENANT_MAX_SUBSCRIPTIONS: int(100, 1, 100_000),
    RUNPROOF_API_KEY_RECHECK_MS: int(2000, 100, 5000),
    RUNPROOF_LOG_LEVEL: z
      .enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(", ")}` })
      .default("info"),
    RUNPROOF_LOG_FORMAT: z
      .enum(LOG_FORMATS, { error: `must be one of ${LOG_FORMATS.join(", ")}` })
      .default("auto"),
  })
  .transform(
    (e): Config => ({
      databaseUrl: e.DATABASE_URL,
      httpAllowedHosts: e.RUNPROOF_HTTP_ALLOWED_HOSTS,
      httpMaxResponseBytes: e.RUNPROOF_HTTP_MAX_RESPONSE_BYTES,
      httpTimeoutMs: e.RUNPROOF_HTTP_TIMEOUT_MS,
      llmBaseUrl: e.RUNPROOF_LLM_BASE_URL,
      llmApiKey: e.RUNPROOF_LLM_API_KEY,
      llmModel: e.RUNPROOF_LLM_MODEL,
      llmTimeoutMs: e.RUNPROOF_LLM_TIMEOUT_MS,
      llmCentsPer1kTokens: e.RUNPROOF_LLM_CENTS_PER_1K_TOKENS,
      planner: e.RUNPROOF_PLANNER,
      workerConcurrency: e.RUNPROOF_WORKER_CONCURRENCY,
      heartbeatMs: e.RUNPROOF_HEARTBEAT_MS,
      staleWorkerMs: e.RUNPROOF_STALE_WORKER_MS,
      retryBaseMs: e.RUNPROOF_RETRY_BASE_MS,
      retentionSchedule: e.RUNPROOF_RETENTION_SCHEDULE,
      checkpoint: {
        schedule: e.RUNPROOF_CHECKPOINT_SCHEDULE,
        key: e.RUNPROOF_CHECKPOINT_KEY,
        keyFile: e.RUNPROOF_CHECKPOINT_KEY_FILE,
        keyName: e.RUNPROOF_CHECKPOINT_KEY_NAME,
        anchors: e.RUNPROOF_CHECKPOINT_ANCHORS,
        retryBaseMs: e.RUNPROOF_ANCHOR_RETRY_BASE_MS,
        retryMaxMs: e.RUNPROOF_ANCHOR_RETRY_MAX_MS,
      },
      port: e.RUNPROOF_PORT,
      logLevel: e.RUNPROOF_LOG_LEVEL,
      logFormat: e.RUNPROOF_LOG_FORMAT,
      graphql: {
        poolSize: e.RUNPROOF_GRAPHQL_POOL_SIZE,
        maxBodyBytes: e.RUNPROOF_GRAPHQL_MAX_BODY_BYTES,
        maxDepth: e.RUNPROOF_GRAPHQL_MAX_DEPTH,
        maxAliases: e.RUNPROOF_GRAPHQL_MAX_ALIASES,
        maxFields: e.RUNPROOF_GRAPHQL_MAX_FIELDS,
        maxCost: e.RUNPROOF_GRAPHQL_MAX_COST,
        maxPageSize: e.RUNPROOF_GRAPHQL_MAX_PAGE_SIZE,
        statementTimeoutMs: e.RUNPROOF_GRAPHQL_STATEMENT_TIMEOUT_MS,
        tenantMaxConcurrent: e.RUNPROOF_TENANT_MAX_CONCURRENT,
        tenantMaxQueued: e.RUNPROOF_TENANT_MAX_QUEUED,
        tenantRatePerSecond: e.RUNPROOF_TENANT_RATE_PER_SECOND,
        tenantCostPerSecond: e.RUNPROOF_TENANT_COST_PER_SECOND,
        tenantMaxSubscriptions: e.RUNPROOF_TENANT_MAX_SUBSCRIPTIONS,
        apiKeyRecheckMs: e.RUNPROOF_API_KEY_RECHECK_MS,
      },
    }),
  )
  .refine((c) => c.graphql.tenantCostPerSecond >= c.graphql.maxCost, {
    // Else a query within the cost limit could never run.
    message: "must be at least RUNPROOF_GRAPHQL_MAX_COST",
    path: ["RUNPROOF_TENANT_COST_PER_SECOND"],
  })
  .refine((c) => c.staleWorkerMs > c.heartbeatMs, {
    // A worker declared stale between two of its own heartbeats would lose its jobs while alive.
    message: "must be greater than RUNPROOF_HEARTBEAT_MS",
    path: ["RUNPROOF_STALE_WORKER_MS"],
  });

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  ${problems.join("\n  ")}`);
    this.name = "ConfigError";
  }
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // Only our variables, and an empty value means "unset" (as in `FOO= runproof ...`).
  const picked: Record<string, string> = {};
  for (const key of Object.keys(configSchema.in.shape)) {
    const v = env[key];
    if (v !== undefined && v.trim() !== "") picked[key] = v.trim();
  }
  const parsed = configSchema.safeParse(picked);
  if (parsed.success) return parsed.data;
  throw new ConfigError(
    parsed.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? "environment");
      const shown = name in picked && !/KEY|URL|ANCHORS/.test(name) ? ` (got "${picked[name]}")` : "";
      return `${name}: ${issue.message}${shown}`;
    }),
  );
}

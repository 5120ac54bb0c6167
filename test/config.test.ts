// loadConfig: defaults that work out of the box, and errors that name the variable.
import test from "ava";
import { ConfigError, loadConfig } from "../src/lib/config.ts";

test("defaults", (t) => {
  t.deepEqual(loadConfig({}), {
    databaseUrl: undefined,
    httpAllowedHosts: ["127.0.0.1", "localhost"],
    httpMaxResponseBytes: 1048576,
    httpTimeoutMs: 10000,
    llmBaseUrl: undefined,
    llmApiKey: undefined,
    llmModel: "gpt-4o-mini",
    llmTimeoutMs: 30000,
    llmCentsPer1kTokens: 0.1,
    planner: "builtin",
    workerConcurrency: 4,
    heartbeatMs: 2000,
    staleWorkerMs: 10000,
    retryBaseMs: 1000,
    retentionSchedule: "*/15 * * * *",
    checkpoint: {
      schedule: "* * * * *",
      key: undefined,
      keyFile: undefined,
      keyName: "runproof.local/log",
      anchors: [],
      retryBaseMs: 5000,
      retryMaxMs: 3600000,
    },
    port: 5678,
    logLevel: "info",
    logFormat: "auto",
    graphql: {
      poolSize: 10,
      maxBodyBytes: 2097152,
      maxDepth: 12,
      maxAliases: 20,
      maxFields: 500,
      maxCost: 100000,
      maxPageSize: 100,
      statementTimeoutMs: 10000,
      tenantMaxConcurrent: 2,
      tenantMaxQueued: 16,
      tenantRatePerSecond: 50,
      tenantCostPerSecond: 100000,
      tenantMaxSubscriptions: 100,
      apiKeyRecheckMs: 2000,
    },
  });
});

test("GraphQL limits are read from RUNPROOF_GRAPHQL_* and RUNPROOF_TENANT_*, and checked", (t) => {
  const c = loadConfig({
    RUNPROOF_GRAPHQL_MAX_DEPTH: "8",
    RUNPROOF_GRAPHQL_MAX_PAGE_SIZE: "50",
    RUNPROOF_TENANT_MAX_CONCURRENT: "2",
    RUNPROOF_API_KEY_RECHECK_MS: "500",
  });
  t.like(c.graphql, { maxDepth: 8, maxPageSize: 50, tenantMaxConcurrent: 2, apiKeyRecheckMs: 500 });
  const e = t.throws(
    () => loadConfig({ RUNPROOF_API_KEY_RECHECK_MS: "60000", RUNPROOF_GRAPHQL_MAX_DEPTH: "1" }),
    {
      instanceOf: ConfigError,
    },
  );
  t.deepEqual(e.problems, [
    'RUNPROOF_GRAPHQL_MAX_DEPTH: must be at least 2 (got "1")',
    // Values of variables named like secrets (KEY, URL) are not echoed.
    "RUNPROOF_API_KEY_RECHECK_MS: must be at most 5000",
  ]);
  const cost = t.throws(
    () => loadConfig({ RUNPROOF_GRAPHQL_MAX_COST: "500000", RUNPROOF_TENANT_COST_PER_SECOND: "400000" }),
    { instanceOf: ConfigError },
  );
  t.deepEqual(cost.problems, [
    'RUNPROOF_TENANT_COST_PER_SECOND: must be at least RUNPROOF_GRAPHQL_MAX_COST (got "400000")',
  ]);
});

test("values are parsed; empty means unset; unrelated variables are ignored", (t) => {
  const c = loadConfig({
    DATABASE_URL: "postgres://u:p@h/db",
    RUNPROOF_HTTP_ALLOWED_HOSTS: " API.example.com , localhost:8080,[::1]:9000,*.internal.test ",
    RUNPROOF_HTTP_TIMEOUT_MS: "2500",
    RUNPROOF_LLM_BASE_URL: "http://127.0.0.1:8080/v1/",
    RUNPROOF_LLM_CENTS_PER_1K_TOKENS: "0.015",
    RUNPROOF_PLANNER: "llm",
    RUNPROOF_WORKER_CONCURRENCY: "16",
    RUNPROOF_LOG_LEVEL: "debug",
    RUNPROOF_PORT: "",
    HOME: "/root",
  });
  t.like(c, {
    databaseUrl: "postgres://u:p@h/db",
    httpTimeoutMs: 2500,
    llmBaseUrl: "http://127.0.0.1:8080/v1",
    llmCentsPer1kTokens: 0.015,
    planner: "llm",
    workerConcurrency: 16,
    logLevel: "debug",
    port: 5678,
  });
  t.deepEqual(c.httpAllowedHosts, ["api.example.com", "localhost:8080", "[::1]:9000", "*.internal.test"]);
  t.deepEqual(loadConfig({ RUNPROOF_HTTP_ALLOWED_HOSTS: "*" }).httpAllowedHosts, ["*"]);
});

test("every bad value is reported with its variable name", (t) => {
  const e = t.throws(
    () =>
      loadConfig({
        RUNPROOF_HTTP_TIMEOUT_MS: "soon",
        RUNPROOF_WORKER_CONCURRENCY: "0",
        RUNPROOF_PLANNER: "gpt",
        RUNPROOF_LLM_BASE_URL: "ftp://x",
        RUNPROOF_HTTP_ALLOWED_HOSTS: "ok.test,http://bad.test/",
        RUNPROOF_LOG_LEVEL: "loud",
        RUNPROOF_PORT: "70000",
        RUNPROOF_GRAPHQL_POOL_SIZE: "0",
      }),
    { instanceOf: ConfigError },
  );
  t.deepEqual(e.problems, [
    'RUNPROOF_HTTP_ALLOWED_HOSTS: "http://bad.test/" is not a hostname, host:port or "*" (got "ok.test,http://bad.test/")',
    'RUNPROOF_HTTP_TIMEOUT_MS: must be a number (got "soon")',
    "RUNPROOF_LLM_BASE_URL: must be an http:// or https:// URL",
    'RUNPROOF_PLANNER: must be "builtin" or "llm" (got "gpt")',
    'RUNPROOF_WORKER_CONCURRENCY: must be at least 1 (got "0")',
    'RUNPROOF_PORT: must be at most 65535 (got "70000")',
    'RUNPROOF_GRAPHQL_POOL_SIZE: must be at least 1 (got "0")',
    'RUNPROOF_LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent (got "loud")',
  ]);
  t.regex(e.message, /^Invalid configuration:\n {2}RUNPROOF_HTTP_ALLOWED_HOSTS: /);
});

test("checkpoint anchors are a JSON array of directory, witness and rfc3161 anchors", (t) => {
  const anchors = [
    { name: "files", kind: "directory", path: "/mnt/worm" },
    { name: "w1", kind: "witness", url: "http://127.0.0.1:1/", key: "w+00000000+AQ==" },
    { name: "tsa", kind: "rfc3161", url: "http://127.0.0.1:2/" },
  ];
  t.deepEqual(
    loadConfig({ RUNPROOF_CHECKPOINT_ANCHORS: JSON.stringify(anchors) }).checkpoint.anchors,
    anchors,
  );
  const e = t.throws(() => loadConfig({ RUNPROOF_CHECKPOINT_ANCHORS: '[{"name": "x", "kind": "ftp"}]' }), {
    instanceOf: ConfigError,
  });
  t.regex(e.message, /RUNPROOF_CHECKPOINT_ANCHORS: must be a JSON array of anchors/);
  t.throws(() => loadConfig({ RUNPROOF_CHECKPOINT_ANCHORS: "not json" }), {
    message: /RUNPROOF_CHECKPOINT_ANCHORS/,
  });
});

test("the payload retention schedule is five crontab fields", (t) => {
  t.is(loadConfig({ RUNPROOF_RETENTION_SCHEDULE: "0 3 * * *" }).retentionSchedule, "0 3 * * *");
  const e = t.throws(() => loadConfig({ RUNPROOF_RETENTION_SCHEDULE: "hourly" }), {
    instanceOf: ConfigError,
  });
  t.deepEqual(e.problems, [
    'RUNPROOF_RETENTION_SCHEDULE: must be five crontab fields, e.g. "*/15 * * * *" (got "hourly")',
  ]);
});

test("a worker cannot be declared stale between two of its own heartbeats", (t) => {
  const e = t.throws(() => loadConfig({ RUNPROOF_HEARTBEAT_MS: "5000", RUNPROOF_STALE_WORKER_MS: "4000" }), {
    instanceOf: ConfigError,
  });
  t.deepEqual(e.problems, [
    'RUNPROOF_STALE_WORKER_MS: must be greater than RUNPROOF_HEARTBEAT_MS (got "4000")',
  ]);
});

test("RUNPROOF_LOG_FORMAT is auto, json or pretty", (t) => {
  t.is(loadConfig({ RUNPROOF_LOG_FORMAT: "json" }).logFormat, "json");
  t.is(loadConfig({ RUNPROOF_LOG_FORMAT: "pretty" }).logFormat, "pretty");
  const e = t.throws(() => loadConfig({ RUNPROOF_LOG_FORMAT: "xml" }), { instanceOf: ConfigError });
  t.regex(e!.message, /RUNPROOF_LOG_FORMAT: must be one of auto, json, pretty \(got "xml"\)/);
});

// Child process of bench/query.ts: RunProof's GraphQL server on a free port, alone in its
// process (so autocannon, in the parent, does not share its event loop). Prints {"url": ...}.
import { loadConfig } from "../src/lib/config.ts";

const connectionString = process.env.BENCH_DB_URL;
if (!connectionString) throw new Error("BENCH_DB_URL is not set");
const { startServer } = await import("../src/server.ts");
// The benchmark measures what one server can do for one tenant, so the per-tenant fair-share
// limits (rate, cost per second, concurrency: src/graphql/tenant-limits.ts) are lifted here.
const config = loadConfig({
  RUNPROOF_LOG_LEVEL: "silent",
  RUNPROOF_TENANT_RATE_PER_SECOND: "1000000",
  RUNPROOF_TENANT_COST_PER_SECOND: "1000000000",
  RUNPROOF_TENANT_MAX_CONCURRENT: "1000",
  RUNPROOF_TENANT_MAX_QUEUED: "100000",
  RUNPROOF_GRAPHQL_POOL_SIZE: process.env.RUNPROOF_GRAPHQL_POOL_SIZE ?? "10",
});
const server = await startServer({ connectionString, config, port: 0, host: "127.0.0.1" });
process.stdout.write(`${JSON.stringify({ url: server.url })}\n`);
const stop = () => void server.stop().finally(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.on("disconnect", stop);

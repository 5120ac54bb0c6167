#!/usr/bin/env -S node --import=tsx
// The runproof command. Every command that writes calls the same SQL functions the other
// interfaces call (runproof.enqueue_run, ...): there is one creation path.
import { Command } from "commander";
import { loadConfig } from "../lib/config.ts";
import { resolveDatabase } from "../lib/database.ts";
import { createLogger } from "../lib/log.ts";
import { migrateDatabase } from "../lib/migrate.ts";

const program = new Command("runproof")
  .description("RunProof: a tamper-evident run ledger in Postgres")
  .showHelpAfterError();

/** Resolves the database (embedded unless DATABASE_URL is set) and keeps it up until the process ends. */
async function database(log: (m: string) => void) {
  const db = await resolveDatabase({ log });
  return db;
}

function waitForSignal(): Promise<string> {
  return new Promise((resolve) => {
    for (const s of ["SIGINT", "SIGTERM"] as const) process.once(s, () => resolve(s));
  });
}

program.command("migrate")
  .description("apply the committed migrations (graphile-worker's schema first)")
  .action(async () => {
    const db = await database((m) => console.error(m));
    try {
      await migrateDatabase(db.url, { log: (m) => console.error(m) });
      console.log("migrated");
    } finally {
      await db.stop();
    }
  });

program.command("worker")
  .description("run a worker process: registers skills, then executes queued runs")
  .option("-c, --concurrency <n>", "jobs at once", (v) => Number.parseInt(v, 10))
  .action(async (opts: { concurrency?: number }) => {
    const config = loadConfig();
    const logger = createLogger(config, "worker");
    const db = await database((m) => logger.info(m));
    const { startWorker } = await import("../worker.ts");
    const worker = await startWorker({ connectionString: db.url, config, concurrency: opts.concurrency, logger });
    console.error(`worker ${worker.processId} running; Ctrl-C to stop`);
    await waitForSignal();
    await worker.stop();
    await db.stop();
  });

program.parseAsync().catch((e: unknown) => {
  console.error(`runproof: ${(e as Error).message}`);
  process.exitCode = 1;
});

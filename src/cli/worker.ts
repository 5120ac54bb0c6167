// runproof worker: registers the skills, then executes queued runs until SIGINT/SIGTERM.
import { loadConfig } from "../lib/config.ts";
import { createLogger } from "../lib/log.ts";
import { err, waitForSignal, withDatabase } from "./common.ts";

export async function workerCommand(opts: { concurrency?: number }): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config, "worker");
  await withDatabase(async ({ url }) => {
    const { startWorker } = await import("../worker.ts");
    const worker = await startWorker({
      connectionString: url,
      config,
      concurrency: opts.concurrency,
      logger,
    });
    err(
      `worker ${worker.processId} running (concurrency ${opts.concurrency ?? config.workerConcurrency}); Ctrl-C to stop`,
    );
    const signal = await waitForSignal();
    err(`${signal}: stopping the worker (a step in flight finishes or is aborted and resumed later)`);
    await worker.stop();
  });
}

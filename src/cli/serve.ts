// runproof serve: the GraphQL server only (run workers separately with runproof worker).
import { loadConfig } from "../lib/config.ts";
import { createLogger } from "../lib/log.ts";
import { err, out, waitForSignal, withDatabase } from "./common.ts";

export async function serveCommand(opts: { port?: number; host?: string; readUrl?: string }): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config, "graphql");
  await withDatabase(async ({ url }) => {
    const { startServer } = await import("../server.ts");
    const server = await startServer({
      connectionString: url,
      config,
      port: opts.port ?? config.port,
      host: opts.host,
      logger,
      readDatabaseUrl: opts.readUrl || process.env.RUNPROOF_READ_DATABASE_URL?.trim() || undefined,
    });
    out(`GraphQL: ${server.url}`);
    err(
      "send Authorization: Bearer <api key> (runproof api-key create); open the URL in a browser for the explorer; Ctrl-C to stop",
    );
    const signal = await waitForSignal();
    err(`${signal}: stopping the GraphQL server`);
    await server.stop();
  });
}

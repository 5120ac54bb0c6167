// Decides which Postgres the app talks to: an explicit DATABASE_URL, or else
// a persistent embedded cluster under <repo>/.data/pg (RUNPROOF_DATA_DIR/pg; zero-setup dev).
import path from "node:path";
import pg from "pg";
import { startEmbeddedPostgres } from "./embedded.ts";

export const REPO_ROOT = path.resolve(import.meta.dirname, "../..");
export const DEFAULT_DB_NAME = "runproof";
export const DEFAULT_EMBEDDED_PORT = 54329; // off 5432 so it never fights a system Postgres

/** Where the embedded cluster (pg/) and the generated passwords live: RUNPROOF_DATA_DIR, else <repo>/.data. */
export function dataRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.RUNPROOF_DATA_DIR?.trim()
    ? path.resolve(env.RUNPROOF_DATA_DIR.trim())
    : path.join(REPO_ROOT, ".data");
}

/** The embedded cluster's data directory. */
export const embeddedDataDir = (env: NodeJS.ProcessEnv = process.env) => path.join(dataRoot(env), "pg");

/** The embedded Postgres port: RUNPROOF_PG_PORT, else 54329. */
export function embeddedPort(env: NodeJS.ProcessEnv = process.env): number {
  const port = Number(env.RUNPROOF_PG_PORT || DEFAULT_EMBEDDED_PORT);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new Error(`RUNPROOF_PG_PORT is not a valid port: ${env.RUNPROOF_PG_PORT}`);
  }
  return port;
}

export interface ResolvedDatabase {
  url: string;
  /** Superuser URL to the server's maintenance DB, when known. */
  rootUrl: string | null;
  embedded: boolean;
  stop(): Promise<void>;
}

/** Same server and credentials, different database. */
export function databaseUrlWithName(url: string, dbName: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(dbName)}`;
  return u.toString();
}

export async function resolveDatabase(opts: { log?: (m: string) => void } = {}): Promise<ResolvedDatabase> {
  const log = opts.log ?? (() => {});
  const envUrl = process.env.DATABASE_URL;
  if (envUrl) {
    return {
      url: envUrl,
      rootUrl: process.env.ROOT_DATABASE_URL || null,
      embedded: false,
      stop: async () => {},
    };
  }

  const port = embeddedPort();
  const dataDir = embeddedDataDir();
  const shown = path.relative(process.cwd(), dataDir);
  log(`using the embedded Postgres (data ${shown.startsWith("..") ? dataDir : shown}, port ${port})`);
  const server = await startEmbeddedPostgres({ dataDir, port, persistent: true });
  try {
    await createDatabaseIfMissing(server.rootUrl, DEFAULT_DB_NAME);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return {
    url: databaseUrlWithName(server.rootUrl, DEFAULT_DB_NAME),
    rootUrl: server.rootUrl,
    embedded: true,
    stop: server.stop,
  };
}

export async function createDatabaseIfMissing(rootUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: rootUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query("select 1 from pg_database where datname = $1", [name]);
    if (!rowCount) {
      try {
        await client.query(`create database ${client.escapeIdentifier(name)}`);
      } catch (err) {
        // Lost a race with a concurrent creator: fine.
        if ((err as { code?: string }).code !== "42P04") throw err;
      }
    }
  } finally {
    await client.end();
  }
}

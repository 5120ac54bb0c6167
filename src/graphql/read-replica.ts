// A read-only replica (a streaming hot standby) for GraphQL queries: `runproof serve --read-url`
// or RUNPROOF_READ_DATABASE_URL. Queries run there; mutations and subscriptions (which LISTEN,
// and whose events come from the primary's NOTIFY) stay on the primary, and so does API key
// authentication, so a revocation takes effect at once. A query may see the ledger as it was a
// moment ago (the standby's replay lag); proofs verify there as on the primary, since run_proof
// and verify_all only read.
//
// PostGraphile v5 has one pgService (the schema is introspected from the primary); the request's
// `withPgClient` (the context key PgContextPlugin fills) is replaced, per operation, with one bound
// to a second service on the replica's pool.
import type { DocumentNode } from "graphql";
import pg from "pg";
import { withPgClientFromPgService } from "postgraphile/@dataplan/pg";
import { makePgService } from "postgraphile/adaptors/pg";
import type { Logger } from "../lib/log.ts";

export type OperationType = "query" | "mutation" | "subscription";

/** The type of the operation a request executes (by operationName, or the only one). */
export function operationTypeOf(
  document: DocumentNode | undefined,
  operationName?: string | null,
): OperationType | undefined {
  if (!document) return undefined;
  const ops = document.definitions.filter((d) => d.kind === "OperationDefinition");
  const op = operationName
    ? ops.find((d) => d.name?.value === operationName)
    : ops.length === 1
      ? ops[0]
      : undefined;
  return op?.operation as OperationType | undefined;
}

export interface ReadReplica {
  /** What the context gives a query instead of the primary's withPgClient. */
  withPgClient: NonNullable<Grafast.Context["withPgClient"]>;
  /** The replica's pool, for what a query reads outside withPgClient (Run.bundle's snapshot). */
  pool: pg.Pool;
  release(): Promise<void>;
}

/**
 * Connects to the replica as runproof_authenticator, with the password the primary gave it (the
 * role and its password reach the standby by replication, so they may arrive a moment later).
 */
export async function openReadReplica(opts: {
  readUrl: string;
  /** The primary's runproof_authenticator URL (ensureAuthenticator). */
  authenticatorUrl: string;
  logger: Logger;
  /** The same size as the primary's pool (config.graphql.poolSize). */
  poolSize: number;
}): Promise<ReadReplica> {
  const auth = new URL(opts.authenticatorUrl);
  const url = new URL(opts.readUrl);
  url.username = auth.username;
  url.password = auth.password;
  const pool = new pg.Pool({ connectionString: url.toString(), max: opts.poolSize });
  pool.on("error", (err) => opts.logger.warn({ err }, "an idle read replica connection failed"));
  try {
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        const {
          rows: [r],
        } = await pool.query<{ recovery: boolean; rolsuper: boolean; rolbypassrls: boolean }>(
          `select pg_is_in_recovery() as recovery, rolsuper, rolbypassrls from pg_roles where rolname = current_user`,
        );
        if (r!.rolsuper || r!.rolbypassrls)
          throw new Error(
            "the read replica's runproof_authenticator is a superuser or has BYPASSRLS; refusing it",
          );
        if (!r!.recovery)
          opts.logger.warn(
            { host: url.host },
            "the read URL is not a standby (pg_is_in_recovery() is false)",
          );
        break;
      } catch (err) {
        const code = (err as { code?: string }).code;
        // 28P01: the password set on the primary has not replayed yet; 57P03: still starting up.
        if ((code !== "28P01" && code !== "57P03") || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } catch (err) {
    await pool.end().catch(() => {});
    throw new Error(`cannot use the read replica at ${url.host}: ${(err as Error).message}`, { cause: err });
  }
  const service = makePgService({ name: "replica", pool, schemas: ["runproof"], pubsub: false });
  opts.logger.info({ host: url.host }, "GraphQL queries go to the read replica");
  return {
    // As PgContextPlugin makes the primary's: a client per request, released after it.
    withPgClient: withPgClientFromPgService.bind(null, service) as ReadReplica["withPgClient"],
    pool,
    release: async () => {
      await Promise.resolve(service.release?.()).catch(() => {});
      await pool.end().catch(() => {});
    },
  };
}

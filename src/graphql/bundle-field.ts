// Run.bundle: the run's proof bundle (runproof.bundle/2, src/lib/bundle.ts) over GraphQL, so the web
// explorer can offer "Download bundle" without a database connection of its own. It is the same
// export as `runproof proof export`, read as the request's tenant: its own connection from the
// server's pool (the read replica's for a query, with --read-url), in one REPEATABLE READ READ ONLY transaction with the request's pgSettings
// (role runproof_tenant, runproof.tenant_id, statement_timeout), so row level security applies and
// a run that is still recording cannot give a bundle whose records come from different moments.
// Its cost is COST_WEIGHTS.bundle (src/graphql/limits.ts): it reads every record of the run and
// runs its proof.
import type pg from "pg";
import { context, lambda, SafeError, type Step } from "postgraphile/grafast";
import { extendSchema, gql } from "postgraphile/utils";
import { exportBundle } from "../lib/bundle.ts";

export function makeBundleFieldPlugin(pool: () => pg.Pool): GraphileConfig.Plugin {
  return extendSchema(
    {
      typeDefs: gql`
        extend type Run {
          """
          The run's proof bundle (format runproof.bundle/2, docs/proof-format.md section 12): every hashed
          record as its canonical text, as runproof proof export writes it. Verify it anywhere with
          runproof proof verify FILE, or by dropping it on the web explorer's Verify page. Read in one
          snapshot; costly (it reads every record of the run and runs its proof): ask for one run at a time.
          """
          bundle: JSON
        }
      `,
      objects: {
        Run: {
          plans: {
            bundle($run: Step) {
              const $id = ($run as unknown as { get(attr: string): Step<string> }).get("id");
              const $settings = context().get("pgSettings") as Step<Record<string, string> | null>;
              const $tenantId = context().get("runproofTenantId") as Step<string | undefined>;
              // A query on a read replica reads its bundle there too, as the rest of its fields.
              const $readPool = context().get("runproofReadPool") as Step<pg.Pool | undefined>;
              return lambda(
                [$id, $tenantId, $settings, $readPool],
                ([runId, tenantId, settings, readPool]) =>
                  runId && tenantId
                    ? readAsTenant(readPool ?? pool(), tenantId, runId, settings ?? {})
                    : null,
              );
            },
          },
        },
      },
    },
    "RunProofBundleFieldPlugin",
  );
}

async function readAsTenant(
  pool: pg.Pool,
  tenantId: string,
  runId: string,
  settings: Record<string, string>,
): Promise<unknown> {
  try {
    // One REPEATABLE READ snapshot as the request's role and tenant (exportBundle with a pool).
    return await exportBundle(pool, tenantId, runId, { settings });
  } catch (err) {
    if (err instanceof Error && /^run \S+ not found/.test(err.message))
      throw new SafeError(`run ${runId} not found`, {
        code: "RPNFD",
        hint: "ask for the bundle of one of your own runs",
      });
    throw err;
  }
}

// runproof migrate: graphile-worker's schema, then the committed migrations (idempotent). Creates
// the database when it does not exist and the role may; a privilege it lacks is named, with a
// HINT, before anything changes (README, "Deploying on your own PostgreSQL").
import { err, out } from "./common.ts";

export async function migrateCommand(): Promise<void> {
  const { resolveDatabase } = await import("../lib/database.ts");
  const { DDL_AUDIT_LOSS, migrateDatabase } = await import("../lib/migrate.ts");
  const db = await resolveDatabase({ log: (m) => err(`runproof: ${m}`) });
  try {
    const result = await migrateDatabase(db.url, { log: (m) => err(`runproof: ${m}`) });
    if (result.createdDatabase) out(`created database "${databaseName(db.url)}"`);
    out("migrated: the database is at the newest committed migration");
    if (result.ddlAudit.state === "NOT_INSTALLED") {
      out(
        `DDL audit: not installed (${result.role} is not a superuser; event triggers need one). Without it ${DDL_AUDIT_LOSS}`,
      );
    } else if (result.ddlAudit.state !== "LIVE") {
      out(`DDL audit: ${result.ddlAudit.state}: ${result.ddlAudit.detail ?? ""}`);
    }
  } finally {
    await db.stop();
  }
}

function databaseName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, ""));
}

// runproof migrate: graphile-worker's schema, then the committed migrations (idempotent).
import { out, withDatabase } from "./common.ts";

export async function migrateCommand(): Promise<void> {
  await withDatabase(
    async () => {
      out("migrated: the database is at the newest committed migration");
    },
    { migrate: "always" },
  );
}

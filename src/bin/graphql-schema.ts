// `npm run graphql:schema`: regenerates schema.graphql (the GraphQL schema in SDL)
// from a fresh, throwaway embedded Postgres migrated with the committed migrations and
// migrations/current.sql (as npm test migrates),
// so the result depends on the migrations and src/graphql/ only.
// `npm run graphql:schema -- --check` exits 1 if schema.graphql is stale instead.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { printRunProofSchema, SCHEMA_FILE } from "../graphql/schema-export.ts";
import { createDatabaseIfMissing, databaseUrlWithName, REPO_ROOT } from "../lib/database.ts";
import { startEmbeddedPostgres } from "../lib/embedded.ts";
import { migrateDatabase } from "../lib/migrate.ts";

async function main(): Promise<number> {
  const check = process.argv.includes("--check");
  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), "runproof-schema-"));
  const server = await startEmbeddedPostgres({ dataDir: path.join(tmpDir, "pg"), persistent: false });
  try {
    await createDatabaseIfMissing(server.rootUrl, "runproof_schema");
    const url = databaseUrlWithName(server.rootUrl, "runproof_schema");
    await migrateDatabase(url, { withCurrent: true }); // as npm test migrates its template
    const sdl = await printRunProofSchema(url);
    const rel = path.relative(REPO_ROOT, SCHEMA_FILE);
    const current = fs.existsSync(SCHEMA_FILE) ? fs.readFileSync(SCHEMA_FILE, "utf8") : null;
    if (check) {
      if (current === sdl) {
        console.error(`${rel} is up to date`);
        return 0;
      }
      console.error(`${rel} is stale: run npm run graphql:schema`);
      return 1;
    }
    if (current === sdl) {
      console.error(`${rel} is up to date`);
    } else {
      fs.writeFileSync(SCHEMA_FILE, sdl);
      console.error(`wrote ${rel}`);
    }
    return 0;
  } finally {
    await server.stop();
    fs.rmSync(tmpDir, { recursive: true, force: true });
  }
}

let code: number;
try {
  code = await main();
} catch (err) {
  console.error(err);
  code = 1;
}
process.exit(code);

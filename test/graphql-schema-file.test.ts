// schema.graphql (checked in) must be what the server builds from the migrations and
// src/graphql/; regenerate it with `npm run graphql:schema` when this fails.
import fs from "node:fs";
import test from "ava";
import { printRunProofSchema, SCHEMA_FILE } from "../src/graphql/schema-export.ts";
import { createTestDatabase } from "./helpers/db.ts";

test("schema.graphql is up to date (npm run graphql:schema regenerates it)", async (t) => {
  const db = await createTestDatabase("graphql-schema-file");
  try {
    const built = await printRunProofSchema(db.url);
    const checkedIn = fs.existsSync(SCHEMA_FILE) ? fs.readFileSync(SCHEMA_FILE, "utf8") : "";
    if (built !== checkedIn) {
      const a = checkedIn.split("\n");
      const b = built.split("\n");
      const i = a.findIndex((line, n) => line !== b[n]);
      t.fail(
        `schema.graphql is stale: run npm run graphql:schema (first difference at line ${i + 1}: ` +
          `checked in ${JSON.stringify(a[i])}, built ${JSON.stringify(b[i])})`,
      );
      return;
    }
    t.pass();
  } finally {
    await db.drop();
  }
});

// Per-test databases cloned from the template that test/run.ts migrated.
import { randomBytes } from "node:crypto";
import pg from "pg";

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set; run the tests via \`npm test\` (test/run.ts)`);
  return v;
}

export interface TestDatabase {
  name: string;
  url: string;
  pool: pg.Pool;
  drop(): Promise<void>;
}

let counter = 0;

export async function createTestDatabase(label: string): Promise<TestDatabase> {
  const rootUrl = env("RUNPROOF_TEST_ROOT_URL");
  const template = env("RUNPROOF_TEST_TEMPLATE");
  // Unique across parallel ava workers; <= 63 bytes (Postgres identifier limit).
  const slug = label
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .slice(0, 24);
  const name = `rpt_${slug}_${process.pid}_${counter++}_${randomBytes(3).toString("hex")}`;

  await withAdmin(rootUrl, async (admin) => {
    const sql = `create database ${admin.escapeIdentifier(name)} template ${admin.escapeIdentifier(template)}`;
    // Postgres already waits ~5s for other sessions to leave the template;
    // retry a little beyond that in case something still holds it.
    for (let attempt = 1; ; attempt++) {
      try {
        await admin.query(sql);
        return;
      } catch (err) {
        const busy = /being accessed by other users/.test((err as Error).message);
        if (!busy || attempt >= 5) throw err;
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  });

  const url = new URL(rootUrl);
  url.pathname = `/${encodeURIComponent(name)}`;
  const pool = new pg.Pool({ connectionString: url.toString(), max: 10 });
  // Idle-client errors (e.g. the DB being force-dropped) must not crash the worker.
  pool.on("error", () => {});

  let dropped: Promise<void> | undefined;
  return {
    name,
    url: url.toString(),
    pool,
    drop: () =>
      (dropped ??= (async () => {
        await pool.end();
        await withAdmin(rootUrl, (admin) =>
          admin.query(`drop database if exists ${admin.escapeIdentifier(name)} with (force)`),
        );
      })()),
  };
}

export async function withClient<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    return await fn(client);
  } finally {
    client.release();
  }
}

async function withAdmin<T>(rootUrl: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: rootUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

// Load, small: 500 runs enqueued by 32 concurrent SQL clients and executed by 4 worker processes.
// All complete, no deadlock, every proof verifies. The 10,000-run version is test/stress/load.test.ts.
import test from "ava";
import { createTestDatabase } from "./helpers/db.ts";
import { runLoad } from "./helpers/load-assert.ts";

test("load: 500 runs from 32 concurrent SQL clients, 4 worker processes", async (t) => {
  t.timeout(120_000);
  const db = await createTestDatabase("load");
  t.teardown(() => db.drop());
  await runLoad(t, db, {
    runs: 500,
    clients: 32,
    workers: 4,
    concurrency: 4,
    tenants: 8,
    finishTimeoutMs: 90_000,
  });
});

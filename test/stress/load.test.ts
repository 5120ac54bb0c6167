// Load, big: 10,000 runs of 1-2 noop steps enqueued by 32 concurrent SQL clients, executed by
// 4 worker processes. All complete, zero deadlocks (40P01), verify_all empty; figures logged.
import test from "ava";
import { createTestDatabase } from "../helpers/db.ts";
import { runLoad } from "../helpers/load-assert.ts";

test("load: 10,000 runs from 32 concurrent SQL clients, 4 worker processes", async (t) => {
  t.timeout(600_000);
  const db = await createTestDatabase("stress-load");
  t.teardown(() => db.drop());
  await runLoad(t, db, {
    runs: 10_000,
    clients: 32,
    workers: 4,
    concurrency: 4,
    tenants: 16,
    finishTimeoutMs: 480_000,
  });
});

// Postgres restarted under a running worker (one restart; three in test/stress/pg-restart.test.ts):
// the worker process survives losing every connection, and every run completes once, VERIFIED.
import test from "ava";
import { pgRestart } from "./helpers/pg-restart.ts";

test("Postgres stopped mid-run and started again 2 s later: the worker survives, every run completes once, VERIFIED", async (t) => {
  t.timeout(180_000);
  await pgRestart(t, { runs: 6, steps: 8, restarts: 1, downMs: 2000 });
});

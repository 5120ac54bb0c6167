// Postgres restarted three times under a running worker, 20 runs of 10 side effects in flight:
// the worker process survives every outage, and every run completes once, VERIFIED.
import test from "ava";
import { pgRestart } from "../helpers/pg-restart.ts";

test("Postgres stopped and started again 3 times during 20 runs: the worker survives, every run completes once, VERIFIED", async (t) => {
  t.timeout(420_000);
  await pgRestart(t, { runs: 20, steps: 10, restarts: 3, downMs: 2000 });
});

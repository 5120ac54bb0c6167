// The crash loop, big: 50 runs of 5 http_call side effects, 3 worker processes (fast heartbeat:
// 200 ms, stale after 1.5 s), SIGKILLed at random moments 100 times and restarted at once.
import test from "ava";
import { runCrashLoop } from "../helpers/crash-loop-assert.ts";
import { createTestDatabase } from "../helpers/db.ts";

test("crash loop: 50 runs x 5 side effects, 100 SIGKILLs of 3 worker processes", async (t) => {
  t.timeout(600_000);
  const db = await createTestDatabase("stress-crash-loop");
  t.teardown(() => db.drop());
  await runCrashLoop(t, db, {
    runs: 50,
    stepsPerRun: 5,
    kills: 100,
    workers: 3,
    concurrency: 2,
    killGapMs: [300, 1500],
    effectDelayMs: [800, 2400],
    finishTimeoutMs: 180_000,
  });
});

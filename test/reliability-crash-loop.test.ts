// The crash loop, small: worker processes SIGKILLed at random moments while runs with external
// side effects execute; every run still succeeds once, nothing is recorded or applied twice,
// every proof verifies. The big version (50 runs, 100 kills) is test/stress/crash-loop.test.ts.
import test from "ava";
import { runCrashLoop } from "./helpers/crash-loop-assert.ts";
import { createTestDatabase } from "./helpers/db.ts";

test("crash loop: 8 runs x 5 side effects, 10 SIGKILLs of 3 worker processes", async (t) => {
  t.timeout(150_000);
  const db = await createTestDatabase("crash-loop");
  t.teardown(() => db.drop());
  await runCrashLoop(t, db, {
    runs: 8,
    stepsPerRun: 5,
    kills: 10,
    workers: 3,
    concurrency: 2,
    killGapMs: [300, 1200],
    effectDelayMs: [800, 2400],
    finishTimeoutMs: 60_000,
  });
});

// The crash loop's assertions, shared by test/reliability-crash-loop.test.ts (small, npm test)
// and test/stress/crash-loop.test.ts (50 runs, 100 kills).
import type { ExecutionContext } from "ava";
import { checkCrashLoop, crashLoop, type CrashLoopOptions } from "./reliability.ts";
import type { TestDatabase } from "./db.ts";

export async function runCrashLoop(
  t: ExecutionContext,
  db: TestDatabase,
  o: CrashLoopOptions,
): Promise<void> {
  const r = await crashLoop(db, { ...o, log: (m) => t.log(m) });
  t.true(r.finished, `every run finished within ${o.finishTimeoutMs} ms of the last kill`);
  const c = await checkCrashLoop(db, r, o.stepsPerRun);
  const total = o.runs * o.stepsPerRun;

  t.is(r.kills, o.kills, "every planned kill happened");
  t.deepEqual(c.statuses, { succeeded: o.runs }, "every run succeeded");
  t.deepEqual(
    c.stepsNotExactlyOnce,
    [],
    "each plan step of each run has exactly one succeeded step: nothing recorded twice, nothing lost",
  );
  t.is(c.succeededSteps, total);
  t.is(c.distinctKeys, total, "the server saw exactly one idempotency key per plan step");
  t.is(r.server.applied.size, total, "and applied exactly one side effect per key");
  t.deepEqual(c.unknownKeys, []);
  t.deepEqual(
    c.requestsAfterSuccess,
    [],
    "no request arrived after its step was recorded as succeeded: a repeat is only ever the step in flight at a kill",
  );
  t.deepEqual(c.proofs, { VERIFIED: o.runs }, "every proof VERIFIED");
  t.deepEqual(c.guards, { GUARDED: o.runs });
  t.deepEqual(c.verifyAll, [], "verify_all is empty");
  t.is(c.lockedJobs, 0, "no job left locked");
  t.is(c.jobsLeft, 0, "no job left at all");
  t.deepEqual(r.workerErrors, [], "no worker logged an error");
  t.is(
    c.workerCrashedIncidents,
    c.abortedTraces,
    "every abandoned attempt was sealed aborted with its worker_crashed incident",
  );

  t.log(
    `${r.kills} SIGKILLs survived (${r.killsWithJobLocked} while the killed process held a job, ${r.killsWithRequestInFlight} with a side-effect request in flight); ` +
      `${r.workerStarts} worker starts`,
  );
  t.log(
    `${o.runs} runs x ${o.stepsPerRun} steps: all succeeded and VERIFIED; ${c.abortedTraces} attempts abandoned and resumed (max ${c.maxAttempts} attempts for one run); ` +
      `${c.requests} requests for ${c.distinctKeys} keys, ${c.repeatedKeys} keys repeated by a resumed attempt and deduplicated by the server`,
  );
  t.log(
    `${r.seconds.toFixed(1)} s in all; the last run finished ${r.secondsAfterLastKill.toFixed(1)} s after the last kill`,
  );
}

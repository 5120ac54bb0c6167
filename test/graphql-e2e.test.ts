// End to end over GraphQL: enqueueRun → a real worker executes the plan → the run is
// followed live (runUpdated) and by polling, then read back with its traces, steps and
// a VERIFIED proof whose hashes match the chain.
import test from "ava";
import { createTestDatabase, type TestDatabase } from "./helpers/db.ts";
import {
  apiTenant,
  gqlOk,
  startTestServer,
  subscribe,
  type ApiTenant,
  type TestServer,
} from "./helpers/graphql.ts";
import { startTestWorker } from "./helpers/worker.ts";

let db: TestDatabase;
let server: TestServer;
let a: ApiTenant;
let worker: Awaited<ReturnType<typeof startTestWorker>> | undefined;

test.before(async () => {
  db = await createTestDatabase("graphql-e2e");
  server = await startTestServer(db.url);
  a = await apiTenant(db.pool);
});
test.after.always(async () => {
  await worker?.stop();
  await server?.stop();
  await db?.drop();
});

const HEX64 = /^[0-9a-f]{64}$/;

const RUN_WITH_PROOF = `query RunWithProof($id: UUID!) {
  run(id: $id) {
    id goal status originSystemId plan rootHash attempts nextPlanStep planStepCount isFinished finishedAt
    agent { id name }
    traces {
      nodes {
        attempt status stepCount rootHash
        proof { verificationStatus }
        steps { nodes { stepIndex planStep skill status input output prevHash stepHash decision { decision reason } } }
      }
    }
    proof { integrityModel verificationStatus chainLength rootHash traceCount stepCount firstBadStepIndex reason }
  }
}`;

test.serial("enqueueRun → worker → live events, polling, and a run with a VERIFIED proof", async (t) => {
  const plan = {
    version: 1,
    steps: [
      { skill: "noop", input: { x: 1 } },
      {
        skill: "json_transform",
        input: {
          expression: "items[price > 10].name",
          data: {
            items: [
              { name: "a", price: 5 },
              { name: "b", price: 20 },
            ],
          },
        },
      },
      { skill: "wait", input: { ms: 20 } },
    ],
  };
  // Enqueue before any worker runs, so the subscription sees every event from the start.
  const { enqueueRun } = await gqlOk(
    server.url,
    a.apiKey,
    `mutation($input: EnqueueRunInput!) {
    enqueueRun(input: $input) { run { id status planStepCount } }
  }`,
    { input: { agentId: a.agentId, goal: "end-to-end over GraphQL", originSystemId: "graphql-e2e", plan } },
  );
  const runId: string = enqueueRun.run.id;
  t.like(enqueueRun.run, { status: "planned", planStepCount: 3 });

  const sub = await subscribe(
    server.url,
    a.apiKey,
    `subscription($id: UUID!) {
    runUpdated(runId: $id) { event runId status attempts nextPlanStep stepIndex planStep skill stepStatus stepHash run { id status } }
  }`,
    { id: runId },
  );
  await sub.waitFor(1);
  t.like(sub.events[0]!.data.runUpdated, { event: "SNAPSHOT", runId, status: "planned", nextPlanStep: 0 });

  worker = await startTestWorker(db.url);

  // Polling, as a client without WebSockets would.
  const deadline = Date.now() + 30_000;
  let polled: any;
  do {
    ({ run: polled } = await gqlOk(
      server.url,
      a.apiKey,
      `query Poll($id: UUID!) { run(id: $id) { status nextPlanStep planStepCount isFinished updatedAt } }`,
      { id: runId },
    ));
    if (polled.isFinished) break;
    await new Promise((r) => setTimeout(r, 100));
  } while (Date.now() < deadline);
  t.like(polled, { status: "succeeded", nextPlanStep: 3, planStepCount: 3, isFinished: true });

  // The live stream ends by itself once the run has finished.
  const end = await Promise.race([
    sub.done,
    new Promise<never>((_r, rej) =>
      setTimeout(() => rej(new Error("subscription did not complete")), 20_000),
    ),
  ]);
  t.true(end.completed);
  const events = sub.events.map((e) => e.data.runUpdated);
  t.deepEqual(
    sub.events.flatMap((e) => e.errors ?? []),
    [],
  );
  t.is(events.at(-1).event, "RUN");
  t.is(events.at(-1).status, "succeeded");
  t.is(events.at(-1).run.status, "succeeded");
  const steps = events.filter((e) => e.event === "STEP");
  t.deepEqual(
    steps.map((e) => [e.stepIndex, e.planStep, e.skill, e.stepStatus]),
    [
      [0, 0, "noop", "succeeded"],
      [1, 1, "json_transform", "succeeded"],
      [2, 2, "wait", "succeeded"],
    ],
  );
  for (const e of steps) t.regex(e.stepHash, HEX64);
  t.true(events.some((e) => e.event === "RUN" && e.status === "running"));

  // The run, its plan, traces, steps and proof.
  const { run } = await gqlOk(server.url, a.apiKey, RUN_WITH_PROOF, { id: runId });
  t.like(run, {
    id: runId,
    goal: "end-to-end over GraphQL",
    status: "succeeded",
    originSystemId: "graphql-e2e",
    attempts: 1,
    isFinished: true,
  });
  t.deepEqual(run.plan, plan);
  t.deepEqual(run.agent, { id: a.agentId, name: "agent" });
  t.like(run.proof, {
    integrityModel: "HASH_CHAIN",
    verificationStatus: "VERIFIED",
    chainLength: 3,
    traceCount: 1,
    stepCount: 3,
    firstBadStepIndex: null,
    reason: null,
  });
  t.regex(run.rootHash, HEX64);
  t.is(run.proof.rootHash, run.rootHash);

  t.is(run.traces.nodes.length, 1);
  const [trace] = run.traces.nodes;
  t.like(trace, { attempt: 1, status: "completed", stepCount: 3, proof: { verificationStatus: "VERIFIED" } });
  const chain = trace.steps.nodes;
  t.deepEqual(
    chain.map((s: any) => s.skill),
    ["noop", "json_transform", "wait"],
  );
  t.deepEqual(chain[1].output, { result: "b" });
  for (const s of chain) {
    t.regex(s.prevHash, HEX64);
    t.regex(s.stepHash, HEX64);
    t.is(s.decision.decision, "allow");
  }
  t.is(chain[1].prevHash, chain[0].stepHash);
  t.is(chain[2].prevHash, chain[1].stepHash);
  t.is(trace.rootHash, chain[2].stepHash);
  t.deepEqual(
    steps.map((e) => e.stepHash),
    chain.map((s: any) => s.stepHash),
  );

  // The same proof the database gives a DBA.
  const {
    rows: [sqlProof],
  } = await db.pool.query(`select * from runproof.run_proof($1, $2)`, [a.tenantId, runId]);
  t.is(sqlProof.verification_status, "VERIFIED");
  t.is(sqlProof.root_hash, run.proof.rootHash);
});

test.serial("subscribing to a finished run yields its SNAPSHOT and completes", async (t) => {
  const { runs } = await gqlOk(
    server.url,
    a.apiKey,
    `{ runs(condition: { status: "succeeded" }, first: 1) { nodes { id } } }`,
  );
  const runId = runs.nodes[0].id;
  const sub = await subscribe(
    server.url,
    a.apiKey,
    `subscription($id: UUID!) { runUpdated(runId: $id) { event status } }`,
    { id: runId },
  );
  const end = await sub.done;
  t.true(end.completed);
  t.deepEqual(
    sub.events.map((e) => e.data.runUpdated),
    [{ event: "SNAPSHOT", status: "succeeded" }],
  );
});

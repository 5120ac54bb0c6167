// The offline verifier (TypeScript, no database) agrees with the PL/pgSQL verifiers field for field, on
// intact runs and on every kind of fault, and any single flipped byte of a bundle's hashed content is detected.
import { createHash } from "node:crypto";
import test from "ava";
import type pg from "pg";
import { type Bundle, exportBundle } from "../src/lib/bundle.ts";
import { verifyBundle } from "../src/lib/offline-verify.ts";
import { nodeSha256 } from "../src/lib/sha256-node.ts";
import { createTestDatabase } from "./helpers/db.ts";
import {
  appendStep,
  asAttacker,
  completedRun,
  createTenant,
  type Fixture,
  insertExtraStep,
  insertRun,
  runProof,
  startAttempt,
} from "./helpers/ledger.ts";
import { failedRun, haltedRun, runningRun } from "./helpers/outcomes.ts";
import { agreeingProof, type FullProof, offlineProof } from "./helpers/verdicts.ts";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let f: Fixture;
test.before(async () => {
  db = await createTestDatabase("offline-verify");
  f = await createTenant(db.pool);
});
test.after.always(async () => db?.drop());

type Tamper = [
  label: string,
  make: () => Promise<{ runId: string; traceIds: string[] }>,
  edit: (c: pg.PoolClient, v: { runId: string; traceIds: string[] }) => Promise<unknown>,
];

const four = () => completedRun(db.pool, f, { stepsPerTrace: 4 });
const twoAttempts = () => completedRun(db.pool, f, { attempts: 2, stepsPerTrace: 3 });
const failed = () => failedRun(db.pool, f);
const halted = () => haltedRun(db.pool, f);
const running = () => runningRun(db.pool, f);
const q =
  (sql: string, which: "trace" | "run" = "trace", attempt = 0) =>
  (c: pg.PoolClient, v: { runId: string; traceIds: string[] }) =>
    c.query(sql, [which === "trace" ? v.traceIds[attempt] : v.runId]);

// Every kind of fault of docs/proof-format.md section 9, made by a superuser with the guards off.
const TAMPERS: Tamper[] = [
  [
    "a payload's output edited",
    four,
    q(`update runproof.step_payloads set output = '{"x":1}' where trace_id = $1 and step_index = 2`),
  ],
  [
    "a payload's input edited",
    four,
    q(`update runproof.step_payloads set input = '{"i":7}' where trace_id = $1 and step_index = 1`),
  ],
  [
    "a failed step's error edited",
    failed,
    q(`update runproof.step_payloads set error = 'all fine' where trace_id = $1 and step_index = 1`),
  ],
  [
    "a payload deleted without an erasure",
    four,
    q(`delete from runproof.step_payloads where trace_id = $1 and step_index = 3`),
  ],
  [
    "a step's cost edited",
    four,
    q(`update runproof.trace_steps set cost_cents = 0 where trace_id = $1 and step_index = 2`),
  ],
  [
    "a step_hash edited",
    four,
    q(`update runproof.trace_steps set step_hash = sha256('x') where trace_id = $1 and step_index = 1`),
  ],
  [
    "a prev_hash edited",
    four,
    q(`update runproof.trace_steps set prev_hash = sha256('y') where trace_id = $1 and step_index = 0`),
  ],
  [
    "a middle step deleted",
    four,
    q(`delete from runproof.trace_steps where trace_id = $1 and step_index = 2`),
  ],
  [
    "the last step deleted",
    four,
    q(`delete from runproof.trace_steps where trace_id = $1 and step_index = 3`),
  ],
  [
    "two steps' indexes swapped",
    four,
    async (c, v) => {
      for (const [from, to] of [
        [1, 1000],
        [3, 1],
        [1000, 3],
      ])
        await c.query(
          `update runproof.trace_steps set step_index = $3 where trace_id = $1 and step_index = $2`,
          [v.traceIds[0], from, to],
        );
    },
  ],
  ["an extra step, decision, payload and hashes", four, (c, v) => insertExtraStep(c, v.traceIds[0], 3)],
  [
    "a decision changed to deny",
    four,
    q(`update runproof.policy_decisions set decision = 'deny' where trace_id = $1 and step_index = 1`),
  ],
  [
    "a decision's reason changed",
    four,
    q(`update runproof.policy_decisions set reason = 'fine' where trace_id = $1 and step_index = 2`),
  ],
  [
    "a decision deleted",
    four,
    q(`delete from runproof.policy_decisions where trace_id = $1 and step_index = 0`),
  ],
  ["a trace's root_hash edited", four, q(`update runproof.traces set root_hash = sha256('x') where id = $1`)],
  ["a trace's seal_hash edited", four, q(`update runproof.traces set seal_hash = sha256('x') where id = $1`)],
  [
    "a trace's metadata edited",
    four,
    q(`update runproof.traces set metadata = '{"worker":"elsewhere"}' where id = $1`),
  ],
  [
    "a trace's status failed -> completed",
    failed,
    q(`update runproof.traces set status = 'completed' where id = $1`),
  ],
  [
    "a trace's completed_at edited",
    four,
    q(`update runproof.traces set completed_at = completed_at + interval '1 hour' where id = $1`),
  ],
  [
    "a whole trace deleted",
    twoAttempts,
    async (c, v) => {
      for (const tbl of ["step_payloads", "trace_steps", "policy_decisions"])
        await c.query(`delete from runproof.${tbl} where trace_id = $1`, [v.traceIds[0]]);
      await c.query(`delete from runproof.traces where id = $1`, [v.traceIds[0]]);
    },
  ],
  ["the run root edited", four, q(`update runproof.runs set root_hash = sha256('z') where id = $1`, "run")],
  [
    "the run's status failed -> succeeded",
    failed,
    q(`update runproof.runs set status = 'succeeded', error = null where id = $1`, "run"),
  ],
  [
    "the run's status halted -> succeeded",
    halted,
    q(`update runproof.runs set status = 'succeeded', error = null where id = $1`, "run"),
  ],
  [
    "the run's error edited",
    failed,
    q(`update runproof.runs set error = 'nothing happened' where id = $1`, "run"),
  ],
  [
    "the run's attempts lowered",
    twoAttempts,
    q(`update runproof.runs set attempts = 1 where id = $1`, "run"),
  ],
  ["the run's progress edited", four, q(`update runproof.runs set next_plan_step = 3 where id = $1`, "run")],
  ["the run's cost edited", four, q(`update runproof.runs set cost_cents = 0 where id = $1`, "run")],
  [
    "the run's created_at edited",
    four,
    q(`update runproof.runs set created_at = created_at - interval '1 day' where id = $1`, "run"),
  ],
  [
    "the run's finished_at edited",
    four,
    q(`update runproof.runs set finished_at = finished_at + interval '1 day' where id = $1`, "run"),
  ],
  [
    "a running run's payload edited",
    running,
    q(`update runproof.step_payloads set output = '{"ok": false}' where trace_id = $1 and step_index = 0`),
  ],
  [
    "a running run's attempts raised",
    running,
    q(`update runproof.runs set attempts = 2 where id = $1`, "run"),
  ],
  [
    "a running run's progress moved to 3",
    running,
    q(`update runproof.runs set next_plan_step = 3 where id = $1`, "run"),
  ],
  [
    "an incident edited",
    failed,
    q(`update runproof.incidents set message = 'all good' where run_id = $1 and kind = 'step_failed'`, "run"),
  ],
  [
    "an incident deleted",
    failed,
    q(`delete from runproof.incidents where run_id = $1 and kind = 'run_failed'`, "run"),
  ],
];

test.serial(
  "the offline verifier agrees with run_proof, verify_trace and verify_all on intact and unfinished runs",
  async (t) => {
    const cases: [string, () => Promise<string>][] = [
      ["intact, one attempt", async () => (await completedRun(db.pool, f)).runId],
      [
        "intact, three attempts",
        async () => (await completedRun(db.pool, f, { attempts: 3, stepsPerTrace: 2 })).runId,
      ],
      ["failed, with incidents", async () => (await failedRun(db.pool, f)).runId],
      ["halted", async () => (await haltedRun(db.pool, f)).runId],
      [
        "in progress",
        async () => {
          const runId = await insertRun(db.pool, f);
          const tr = await startAttempt(db.pool, f, runId);
          await appendStep(db.pool, f, runId, tr, 0, {
            input: { text: 'naïve ☃ "quoted" \\ \n tab\t \u2028' },
          });
          return runId;
        },
      ],
      [
        "pending, without a plan",
        async () =>
          (
            await db.pool.query(
              `insert into runproof.runs (tenant_id, agent_id, goal, origin_system_id) values ($1, $2, $3, 'ava-test') returning id`,
              [f.tenantId, f.agentId, 'g ☃ "q" \\ \u2028 \u0001'],
            )
          ).rows[0].id,
      ],
      [
        "cancelled before it ran",
        async () => {
          const r = await insertRun(db.pool, f);
          await db.pool.query(`select runproof.cancel_run($1, 'no longer needed', $2)`, [r, f.tenantId]);
          return r;
        },
      ],
      [
        "retrying between attempts",
        async () => {
          const r = await insertRun(db.pool, f);
          const tr = await startAttempt(db.pool, f, r);
          await appendStep(db.pool, f, r, tr, 0);
          await appendStep(db.pool, f, r, tr, 1, { status: "failed" });
          await db.pool.query(
            `select runproof_private.end_attempt(p_tenant_id => $1, p_run_id => $2, p_trace_id => $3, p_trace_status => 'failed',
               p_run_status => 'retrying', p_error => 'boom', p_incident_kind => 'step_failed', p_trace_metadata => '{"n": 1.0, "m": 1e2}')`,
            [f.tenantId, r, tr],
          );
          return r;
        },
      ],
      [
        "empty running trace",
        async () => {
          const r = await insertRun(db.pool, f);
          await startAttempt(db.pool, f, r);
          return r;
        },
      ],
      [
        "payloads erased",
        async () => {
          const { runId } = await completedRun(db.pool, f, { attempts: 2, stepsPerTrace: 2 });
          await db.pool.query(
            `select runproof.erase_payloads(run_id => $1, reason => 'test', tenant_id => $2)`,
            [runId, f.tenantId],
          );
          return runId;
        },
      ],
      [
        "recorded while a guard was changed (UNGUARDED)",
        async () => {
          const runId = await insertRun(db.pool, f);
          const tr = await startAttempt(db.pool, f, runId);
          await appendStep(db.pool, f, runId, tr, 0);
          await db.pool.query(`alter table runproof.incidents alter column severity set default 'info'`);
          await db.pool.query(`alter table runproof.incidents alter column severity set default 'error'`);
          await appendStep(db.pool, f, runId, tr, 1);
          t.is(((await runProof(db.pool, f.tenantId, runId)) as FullProof).guard_status, "UNGUARDED");
          return runId;
        },
      ],
    ];
    const statuses = new Set<string>();
    for (const [label, make] of cases)
      statuses.add((await agreeingProof(t, db.pool, f.tenantId, await make(), label)).verification_status);
    t.deepEqual([...statuses].sort(), ["IN_PROGRESS", "VERIFIED"]);
    const erased = await agreeingProof(
      t,
      db.pool,
      f.tenantId,
      await cases.find((c) => c[0] === "payloads erased")![1](),
      "payloads erased",
    );
    t.is(erased.erased_steps, 4);
  },
);

test.serial(
  "the offline verifier agrees with run_proof, verify_trace and verify_all on every kind of tampering",
  async (t) => {
    const statuses = new Set<string>();
    for (const [label, make, edit] of TAMPERS) {
      const v = await make();
      await asAttacker(db.pool, (c) => edit(c, v));
      const p = await agreeingProof(t, db.pool, f.tenantId, v.runId, label);
      t.true(
        p.verification_status === "TAMPERED" || p.verification_status === "BROKEN",
        `${label}: ${p.verification_status}`,
      );
      statuses.add(p.verification_status);
    }
    t.deepEqual([...statuses].sort(), ["BROKEN", "TAMPERED"]);
  },
);

/** Flips one bit of the UTF-8 bytes of a text (the result may not be valid UTF-8: then it holds U+FFFD). */
const flipText = (s: string, i: number) => {
  const b = Buffer.from(s, "utf8");
  b[i] ^= 0x01;
  return b.toString("utf8");
};
const flipHex = (h: string, i: number) => h.slice(0, i) + (h[i] === "0" ? "1" : "0") + h.slice(i + 1);

test.serial("flipping any single byte of a bundle's hashed content is detected", async (t) => {
  const { runId } = await failedRun(db.pool, f);
  const bundle: Bundle = JSON.parse(JSON.stringify(await exportBundle(db.pool, f.tenantId, runId)));
  t.is((await verifyBundle(bundle, { sha256: nodeSha256 })).verification_status, "VERIFIED");
  t.true(bundle.incidents.length === 2 && bundle.traces.length === 2);
  const mutations: [string, (b: Bundle) => void][] = [];
  const texts = (
    what: string,
    get: (b: Bundle) => string,
    set: (b: Bundle, v: string) => void,
    of: Bundle,
  ) => {
    const n = Buffer.byteLength(get(of), "utf8");
    for (let i = 0; i < n; i++) mutations.push([`${what} byte ${i}`, (b) => set(b, flipText(get(b), i))]);
  };
  const hexes = (what: string, get: (b: Bundle) => string, set: (b: Bundle, v: string) => void) => {
    for (let i = 0; i < 64; i++) mutations.push([`${what} digit ${i}`, (b) => set(b, flipHex(get(b), i))]);
  };
  texts(
    "run content",
    (b) => b.run.content,
    (b, v) => {
      b.run.content = v;
    },
    bundle,
  );
  texts(
    "run state",
    (b) => b.run.state,
    (b, v) => {
      b.run.state = v;
    },
    bundle,
  );
  texts(
    "run seal",
    (b) => b.run.seal!,
    (b, v) => {
      b.run.seal = v;
    },
    bundle,
  );
  hexes(
    "run root",
    (b) => b.run.root_hash!,
    (b, v) => {
      b.run.root_hash = v;
    },
  );
  bundle.incidents.forEach((_, k) =>
    texts(
      `incident ${k}`,
      (b) => b.incidents[k],
      (b, v) => {
        b.incidents[k] = v;
      },
      bundle,
    ),
  );
  bundle.traces.forEach((tr, ti) => {
    texts(
      `trace ${ti} state`,
      (b) => b.traces[ti].state,
      (b, v) => {
        b.traces[ti].state = v;
      },
      bundle,
    );
    texts(
      `trace ${ti} seal`,
      (b) => b.traces[ti].seal!,
      (b, v) => {
        b.traces[ti].seal = v;
      },
      bundle,
    );
    hexes(
      `trace ${ti} seal_hash`,
      (b) => b.traces[ti].seal_hash!,
      (b, v) => {
        b.traces[ti].seal_hash = v;
      },
    );
    tr.steps.forEach((s, si) => {
      const step = (b: Bundle) => b.traces[ti].steps[si];
      texts(
        `trace ${ti} step ${si} canonical`,
        (b) => step(b).canonical,
        (b, v) => {
          step(b).canonical = v;
        },
        bundle,
      );
      texts(
        `trace ${ti} step ${si} decision`,
        (b) => step(b).decision!,
        (b, v) => {
          step(b).decision = v;
        },
        bundle,
      );
      hexes(
        `trace ${ti} step ${si} prev_hash`,
        (b) => step(b).prev_hash,
        (b, v) => {
          step(b).prev_hash = v;
        },
      );
      hexes(
        `trace ${ti} step ${si} step_hash`,
        (b) => step(b).step_hash,
        (b, v) => {
          step(b).step_hash = v;
        },
      );
      for (const kind of ["input", "output", "error"] as const) {
        if (!s.payload?.[kind]) continue;
        const pay = (b: Bundle) => step(b).payload![kind]!;
        texts(
          `trace ${ti} step ${si} ${kind}`,
          (b) => pay(b).text,
          (b, v) => {
            pay(b).text = v;
          },
          bundle,
        );
        hexes(
          `trace ${ti} step ${si} ${kind} salt`,
          (b) => pay(b).salt,
          (b, v) => {
            pay(b).salt = v;
          },
        );
      }
    });
  });
  mutations.push([
    "a dropped step",
    (b) => {
      b.traces[1].steps.pop();
    },
  ]);
  mutations.push([
    "a dropped payload",
    (b) => {
      b.traces[0].steps[0].payload = null;
    },
  ]);
  mutations.push([
    "a dropped decision",
    (b) => {
      b.traces[0].steps[1].decision = null;
    },
  ]);
  mutations.push([
    "a dropped trace",
    (b) => {
      b.traces.shift();
    },
  ]);
  mutations.push([
    "a dropped incident",
    (b) => {
      b.incidents.pop();
    },
  ]);
  mutations.push([
    "swapped incidents",
    (b) => {
      b.incidents.reverse();
    },
  ]);
  mutations.push([
    "another run id",
    (b) => {
      b.run_id = b.traces[0].steps[0].step_hash.slice(0, 8) + b.run_id.slice(8);
    },
  ]);
  for (const [what, mutate] of mutations) {
    const copy: Bundle = structuredClone(bundle);
    mutate(copy);
    const r = await verifyBundle(copy, { sha256: nodeSha256 });
    if (r.verification_status === "VERIFIED" || r.verification_status === "IN_PROGRESS")
      t.fail(`${what} was not detected`);
  }
  t.true(mutations.length > 5000, `${mutations.length} mutations tried`);
  t.log(`${mutations.length} single-byte mutations, all detected`);
});

test.serial(
  "a bundle whose trace is rewritten consistently (state, seal, seal hash) under an unchanged run state is TAMPERED",
  async (t) => {
    const { runId } = await completedRun(db.pool, f, { attempts: 2, stepsPerTrace: 2 });
    const bundle: Bundle = JSON.parse(JSON.stringify(await exportBundle(db.pool, f.tenantId, runId)));
    // Attempt 1 "was only aborted": a trace status its steps allow, its seal re-made to match.
    const tr = bundle.traces[0];
    tr.state = tr.state.replace('"failed"', '"aborted"');
    tr.seal = tr.state;
    tr.seal_hash = createHash("sha256").update(tr.seal, "utf8").digest("hex");
    const r = await verifyBundle(bundle, { sha256: nodeSha256 });
    t.like(r, {
      verification_status: "TAMPERED",
      first_bad_attempt: null,
      reason: "the bundle's trace seals are not the ones its run state lists",
    });
    // Its incidents likewise.
    const withIncident: Bundle = JSON.parse(
      JSON.stringify(await exportBundle(db.pool, f.tenantId, (await failedRun(db.pool, f)).runId)),
    );
    withIncident.incidents[0] = withIncident.incidents[0].replace("boom", "fine");
    t.like(await verifyBundle(withIncident, { sha256: nodeSha256 }), {
      verification_status: "TAMPERED",
      reason: "the bundle's incidents are not the ones its run state lists",
    });
  },
);

test.serial(
  "a bundle exported before an erasure and one exported after verify offline to the same root",
  async (t) => {
    const { runId } = await failedRun(db.pool, f);
    const before = await offlineProof(db.pool, f.tenantId, runId);
    await db.pool.query(
      `select runproof.erase_payloads(run_id => $1, reason => 'GDPR request', tenant_id => $2)`,
      [runId, f.tenantId],
    );
    const after = await agreeingProof(t, db.pool, f.tenantId, runId, "after erasure");
    t.like(before, { verification_status: "VERIFIED", erased_steps: 0 });
    t.like(after, { verification_status: "VERIFIED", erased_steps: 3 });
    t.truthy(before.root_hash);
    t.is(after.root_hash, before.root_hash as string);
    // A step whose payloads are gone without their erasure record is BROKEN.
    await asAttacker(db.pool, (c) =>
      c.query(`delete from runproof.payload_erasure_steps where run_id = $1 and step_index = 0`, [runId]),
    );
    const unrecorded = await agreeingProof(t, db.pool, f.tenantId, runId, "erasure record deleted");
    t.like(unrecorded, { verification_status: "BROKEN", first_bad_attempt: 1, first_bad_step_index: 0 });
    t.is(unrecorded.reason, "attempt 1: step 0: its payloads are missing and no erasure of them is recorded");
    // Without the erasure itself (who, when, why), the steps it lists are not recorded as erased either.
    const { runId: other } = await completedRun(db.pool, f, { stepsPerTrace: 2 });
    await db.pool.query(
      `select runproof.erase_payloads(run_id => $1, reason => 'GDPR request', tenant_id => $2)`,
      [other, f.tenantId],
    );
    await asAttacker(db.pool, (c) =>
      c.query(
        `delete from runproof.payload_erasures e using runproof.payload_erasure_steps x where x.erasure_id = e.id and x.run_id = $1`,
        [other],
      ),
    );
    const noErasure = await agreeingProof(t, db.pool, f.tenantId, other, "erasure deleted, its steps kept");
    t.like(noErasure, {
      verification_status: "BROKEN",
      first_bad_attempt: 1,
      first_bad_step_index: 0,
      erased_steps: 0,
    });
  },
);

test.serial("a malformed bundle is INVALID_BUNDLE with the path of the problem", async (t) => {
  const r = await verifyBundle({
    format: "runproof.bundle/1",
    integrity_model: "HASH_CHAIN",
    exported_at: "x",
    tenant_id: "not-a-uuid",
  });
  t.is(r.verification_status, "INVALID_BUNDLE");
  t.regex(r.reason!, /format-1 bundle/);
  const r2 = await verifyBundle({ format: "runproof.bundle/2", tenant_id: "not-a-uuid" });
  t.is(r2.verification_status, "INVALID_BUNDLE");
  t.regex(r2.reason!, /tenant_id: /);
});

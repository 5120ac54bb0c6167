// The offline verifier (TypeScript, no database) agrees with the PL/pgSQL verifier, and any
// single flipped byte of a bundle's hashed content is detected.
import test from "ava";
import { exportBundle, type Bundle } from "../src/lib/bundle.ts";
import { verifyBundle } from "../src/lib/offline-verify.ts";
import { createTestDatabase } from "./helpers/db.ts";
import {
  appendStep,
  asAttacker,
  completedRun,
  createTenant,
  insertRun,
  runProof,
  startAttempt,
  type Fixture,
} from "./helpers/ledger.ts";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let f: Fixture;
test.before(async () => {
  db = await createTestDatabase("offline-verify");
  f = await createTenant(db.pool);
});
test.after.always(async () => db?.drop());

const FIELDS = [
  "verification_status",
  "chain_length",
  "root_hash",
  "trace_count",
  "step_count",
  "first_bad_attempt",
  "first_bad_trace_id",
  "first_bad_step_index",
  "reason",
  "guard_status",
  "guard_detail",
] as const;

async function agree(t: any, runId: string, label: string) {
  const sql = await runProof(db.pool, f.tenantId, runId);
  const bundle = JSON.parse(JSON.stringify(await exportBundle(db.pool, f.tenantId, runId)));
  const offline = verifyBundle(bundle);
  for (const k of FIELDS) t.deepEqual(offline[k], (sql as any)[k], `${label}: ${k}`);
  return sql.verification_status;
}

test.serial(
  "the offline verifier agrees with run_proof on intact, unfinished and tampered runs",
  async (t) => {
    const cases: [string, () => Promise<string>][] = [
      ["intact, one attempt", async () => (await completedRun(db.pool, f)).runId],
      [
        "intact, three attempts",
        async () => (await completedRun(db.pool, f, { attempts: 3, stepsPerTrace: 2 })).runId,
      ],
      [
        "in progress",
        async () => {
          const runId = await insertRun(db.pool, f);
          const tr = await startAttempt(db.pool, f, runId);
          await appendStep(db.pool, f, runId, tr, 0, { input: { text: 'naïve ☃ "quoted" \\ \n tab\t' } });
          return runId;
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
        "recorded while a guard was changed (UNGUARDED)",
        async () => {
          const runId = await insertRun(db.pool, f);
          const tr = await startAttempt(db.pool, f, runId);
          await appendStep(db.pool, f, runId, tr, 0);
          await db.pool.query(`alter table runproof.incidents alter column severity set default 'info'`);
          await db.pool.query(`alter table runproof.incidents alter column severity set default 'error'`);
          await appendStep(db.pool, f, runId, tr, 1);
          t.is(((await runProof(db.pool, f.tenantId, runId)) as any).guard_status, "UNGUARDED");
          return runId;
        },
      ],
    ];
    const tampers: [string, (tr: string[]) => string][] = [
      [
        "(a) content edited",
        () => `update runproof.trace_steps set output = '{"x":1}' where trace_id = $1 and step_index = 2`,
      ],
      [
        "(b) step_hash edited",
        () =>
          `update runproof.trace_steps set step_hash = sha256('x') where trace_id = $1 and step_index = 1`,
      ],
      [
        "(c) middle step deleted",
        () => `delete from runproof.trace_steps where trace_id = $1 and step_index = 2`,
      ],
      [
        "(d) last step deleted",
        () => `delete from runproof.trace_steps where trace_id = $1 and step_index = 3`,
      ],
      [
        "(f) indexes swapped",
        () =>
          `update runproof.trace_steps set step_index = case step_index when 1 then 3 else 1 end where trace_id = $1 and step_index in (1, 3)`,
      ],
      ["(h) root edited", () => `update runproof.traces set root_hash = sha256('x') where id = $1`],
      [
        "prev_hash edited",
        () =>
          `update runproof.trace_steps set prev_hash = sha256('y') where trace_id = $1 and step_index = 0`,
      ],
    ];
    const statuses = new Set<string>();
    for (const [label, make] of cases) statuses.add(await agree(t, await make(), label));
    for (const [label, sql] of tampers) {
      const { runId, traceIds } = await completedRun(db.pool, f, { stepsPerTrace: 4 });
      await asAttacker(db.pool, async (c) => {
        if (label.startsWith("(f)")) {
          await c.query(
            `update runproof.trace_steps set step_index = 1000 where trace_id = $1 and step_index = 1`,
            [traceIds[0]],
          );
          await c.query(
            `update runproof.trace_steps set step_index = 1 where trace_id = $1 and step_index = 3`,
            [traceIds[0]],
          );
          await c.query(
            `update runproof.trace_steps set step_index = 3 where trace_id = $1 and step_index = 1000`,
            [traceIds[0]],
          );
        } else {
          await c.query(sql(traceIds), [traceIds[0]]);
        }
      });
      statuses.add(await agree(t, runId, label));
    }
    // (i) a whole trace deleted
    const two = await completedRun(db.pool, f, { attempts: 2, stepsPerTrace: 2 });
    await asAttacker(db.pool, async (c) => {
      await c.query(`delete from runproof.trace_steps where trace_id = $1`, [two.traceIds[0]]);
      await c.query(`delete from runproof.traces where id = $1`, [two.traceIds[0]]);
    });
    statuses.add(await agree(t, two.runId, "(i) trace deleted"));
    // the run's seal edited
    const sealed = await completedRun(db.pool, f);
    await asAttacker(db.pool, (c) =>
      c.query(`update runproof.runs set root_hash = sha256('z') where id = $1`, [sealed.runId]),
    );
    statuses.add(await agree(t, sealed.runId, "run root edited"));
    t.deepEqual([...statuses].sort(), ["BROKEN", "IN_PROGRESS", "TAMPERED", "VERIFIED"]);
  },
);

test.serial("flipping any single byte of a bundle's hashed content is detected", async (t) => {
  const { runId } = await completedRun(db.pool, f, { attempts: 2, stepsPerTrace: 3 });
  const bundle: Bundle = JSON.parse(JSON.stringify(await exportBundle(db.pool, f.tenantId, runId)));
  t.is(verifyBundle(bundle).verification_status, "VERIFIED");
  let flips = 0;
  const check = (mutate: (b: Bundle) => void, what: string) => {
    const copy: Bundle = structuredClone(bundle);
    mutate(copy);
    const r = verifyBundle(copy);
    flips++;
    if (r.verification_status === "VERIFIED" || r.verification_status === "IN_PROGRESS")
      t.fail(`${what} was not detected`);
  };
  bundle.traces.forEach((tr, ti) =>
    tr.steps.forEach((s, si) => {
      const bytes = Buffer.from(s.canonical, "base64");
      for (let i = 0; i < bytes.length; i++) {
        check((b) => {
          const flipped = Buffer.from(bytes);
          flipped[i] ^= 0x01;
          b.traces[ti].steps[si].canonical = flipped.toString("base64");
        }, `trace ${ti} step ${si} canonical byte ${i}`);
      }
      for (const field of ["prev_hash", "step_hash"] as const) {
        for (let i = 0; i < 64; i++) {
          check((b) => {
            const h = b.traces[ti].steps[si][field];
            b.traces[ti].steps[si][field] = h.slice(0, i) + (h[i] === "0" ? "1" : "0") + h.slice(i + 1);
          }, `trace ${ti} step ${si} ${field} digit ${i}`);
        }
      }
    }),
  );
  for (let i = 0; i < 64; i++) {
    check((b) => {
      const h = b.run.root_hash!;
      b.run.root_hash = h.slice(0, i) + (h[i] === "a" ? "b" : "a") + h.slice(i + 1);
    }, `run root digit ${i}`);
    check((b) => {
      const h = b.traces[0].root_hash!;
      b.traces[0].root_hash = h.slice(0, i) + (h[i] === "a" ? "b" : "a") + h.slice(i + 1);
    }, `trace root digit ${i}`);
  }
  check((b) => {
    b.traces[1].steps.pop();
  }, "a dropped step");
  check((b) => {
    b.traces.shift();
  }, "a dropped trace");
  check((b) => {
    b.run_id = b.traces[0].id;
  }, "another run id");
  t.true(flips > 2000, `${flips} single-byte mutations tried`);
  t.log(`${flips} single-byte mutations, all detected`);
});

test.serial("a malformed bundle is INVALID_BUNDLE with the path of the problem", (t) => {
  const r = verifyBundle({
    format: "runproof.bundle/1",
    integrity_model: "HASH_CHAIN",
    exported_at: "x",
    tenant_id: "not-a-uuid",
  });
  t.is(r.verification_status, "INVALID_BUNDLE");
  t.regex(r.reason!, /tenant_id: /);
});

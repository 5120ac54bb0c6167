// The known-answer vectors of docs/proof-format.md section 10: every hash recomputed from the
// page's canonical texts with nothing but SHA-256; the database's canonical functions produce
// exactly those texts from exactly those rows; run_proof and the offline verifier both say VERIFIED,
// with the page's run root.
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import test from "ava";
import { exportBundle } from "../src/lib/bundle.ts";
import { REPO_ROOT } from "../src/lib/database.ts";
import { verifyBundle } from "../src/lib/offline-verify.ts";
import { createTestDatabase, withClient } from "./helpers/db.ts";

const sha256 = (...parts: (Buffer | string)[]) => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest();
};

interface Vectors {
  inputs: {
    tenant_id: string;
    agent_id: string;
    run: Record<string, unknown>;
    traces: Record<string, unknown>[];
    steps: (Record<string, unknown> & { attempt: number; step_index: number })[];
    incidents: Record<string, unknown>[];
  };
  expected: {
    steps: {
      attempt: number;
      step_index: number;
      decision_canonical: string;
      decision_hash: string;
      payload: Record<"input" | "output" | "error", { salt: string; text: string } | null>;
      input_commitment: string;
      output_commitment: string | null;
      error_commitment: string | null;
      canonical: string;
      canonical_sha256: string;
      prev_hash: string;
      step_hash: string;
    }[];
    traces: { attempt: number; genesis: string; root_hash: string; seal: string; seal_hash: string }[];
    incidents: { canonical: string; hash: string }[];
    run: { content: string; content_hash: string; seal: string; root_hash: string };
  };
}

async function readVectors(): Promise<Vectors> {
  const doc = await fs.readFile(path.join(REPO_ROOT, "docs", "proof-format.md"), "utf8");
  const section = doc.slice(doc.indexOf("## 10. Known-answer vectors"));
  const m = /```json\n([\s\S]*?)\n```/.exec(section);
  if (!m) throw new Error("docs/proof-format.md section 10 has no ```json block");
  return JSON.parse(m[1]);
}

let v: Vectors;
let db: Awaited<ReturnType<typeof createTestDatabase>>;
test.before(async () => {
  v = await readVectors();
  db = await createTestDatabase("proof_format");
});
test.after.always(async () => db?.drop());

test("every hash of the vectors follows from their canonical texts with SHA-256 alone", (t) => {
  const { expected: e, inputs } = v;
  for (const tr of e.traces) {
    t.is(
      tr.genesis,
      sha256(
        `runproof.genesis/2|${inputs.tenant_id}|${inputs.run.id}|${inputs.traces[tr.attempt - 1].id}`,
      ).toString("hex"),
    );
    const steps = e.steps.filter((s) => s.attempt === tr.attempt);
    let prev = tr.genesis;
    for (const s of steps) {
      t.is(s.decision_hash, sha256(s.decision_canonical).toString("hex"));
      for (const kind of ["input", "output", "error"] as const) {
        const p = s.payload[kind];
        const commitment = p
          ? sha256(`runproof.payload/2|${kind}|`, Buffer.from(p.salt, "hex"), p.text).toString("hex")
          : null;
        t.is(
          s[`${kind}_commitment`],
          commitment,
          `${kind} commitment of attempt ${s.attempt} step ${s.step_index}`,
        );
      }
      const c = JSON.parse(s.canonical);
      t.is(c[0], "runproof.step/2");
      t.deepEqual(c.slice(9, 13), [
        s.decision_hash,
        s.input_commitment,
        s.output_commitment,
        s.error_commitment,
      ]);
      t.is(s.canonical_sha256, sha256(s.canonical).toString("hex"));
      t.is(s.prev_hash, prev);
      t.is(s.step_hash, sha256(Buffer.from(prev, "hex"), sha256(s.canonical)).toString("hex"));
      prev = s.step_hash;
    }
    t.is(tr.root_hash, prev);
    t.is(JSON.parse(tr.seal)[9], tr.root_hash);
    t.is(tr.seal_hash, sha256(tr.seal).toString("hex"));
  }
  for (const i of e.incidents) t.is(i.hash, sha256(i.canonical).toString("hex"));
  t.is(e.run.content_hash, sha256(e.run.content).toString("hex"));
  const seal = JSON.parse(e.run.seal);
  t.is(seal[3], e.run.content_hash);
  t.deepEqual(
    seal[12],
    e.traces.map((x) => x.seal_hash),
  );
  t.deepEqual(
    seal[13],
    e.incidents.map((x) => x.hash),
  );
  t.is(e.run.root_hash, sha256(e.run.seal).toString("hex"));
});

test("the database makes exactly these texts from these rows; run_proof and the offline verifier agree", async (t) => {
  const { inputs: i, expected: e } = v;
  await withClient(db.pool, async (c) => {
    await c.query("begin");
    try {
      // The rows as the page gives them, hashes and seals included (the guards would compute
      // their own timestamps): a superuser's insert with the triggers off.
      for (const tbl of [
        "tenants",
        "agents",
        "runs",
        "traces",
        "policy_decisions",
        "trace_steps",
        "step_payloads",
        "incidents",
      ])
        await c.query(`alter table runproof.${tbl} disable trigger all`);
      await c.query(`insert into runproof.tenants (id, name) values ($1, 'vectors')`, [i.tenant_id]);
      await c.query(`insert into runproof.agents (tenant_id, id, name) values ($1, $2, 'vectors-agent')`, [
        i.tenant_id,
        i.agent_id,
      ]);
      await c.query(
        `insert into runproof.runs select * from jsonb_populate_record(null::runproof.runs, $1)`,
        [
          {
            ...i.run,
            trace_count: e.traces.length,
            seal: `\\x${Buffer.from(e.run.seal).toString("hex")}`,
            root_hash: `\\x${e.run.root_hash}`,
          },
        ],
      );
      for (const [k, tr] of i.traces.entries()) {
        const x = e.traces[k];
        const steps = e.steps.filter((s) => s.attempt === x.attempt);
        await c.query(
          `insert into runproof.traces select * from jsonb_populate_record(null::runproof.traces, $1)`,
          [
            {
              ...tr,
              step_count: steps.length,
              root_hash: `\\x${x.root_hash}`,
              seal: `\\x${Buffer.from(x.seal).toString("hex")}`,
              seal_hash: `\\x${x.seal_hash}`,
            },
          ],
        );
      }
      for (const s of i.steps) {
        const tr = i.traces[s.attempt - 1];
        const x = e.steps.find((y) => y.attempt === s.attempt && y.step_index === s.step_index)!;
        const key = {
          tenant_id: i.tenant_id,
          run_id: i.run.id,
          trace_id: tr.id,
          step_index: s.step_index,
          plan_step: s.plan_step,
          skill: s.skill,
        };
        await c.query(
          `insert into runproof.policy_decisions select * from jsonb_populate_record(null::runproof.policy_decisions, $1)`,
          [
            {
              ...key,
              decision: s.decision,
              rule: s.rule,
              reason: s.reason,
              budget_cents: s.budget,
              spent_cents: s.spent,
              decided_at: s.decided_at,
            },
          ],
        );
        const bytea = (h: string | null) => (h === null ? null : `\\x${h}`);
        await c.query(
          `insert into runproof.trace_steps select * from jsonb_populate_record(null::runproof.trace_steps, $1)`,
          [
            {
              ...key,
              status: s.status,
              policy_decision: s.decision,
              started_at: s.started_at,
              finished_at: s.finished_at,
              duration_ms: s.duration_ms,
              cost_cents: s.cost_cents,
              source: "worker",
              level: s.level,
              recorded_at: s.recorded_at,
              prev_hash: bytea(x.prev_hash),
              step_hash: bytea(x.step_hash),
              decision_hash: bytea(x.decision_hash),
              input_commitment: bytea(x.input_commitment),
              output_commitment: bytea(x.output_commitment),
              error_commitment: bytea(x.error_commitment),
            },
          ],
        );
        await c.query(
          `insert into runproof.step_payloads (tenant_id, run_id, trace_id, step_index, input, input_salt, output, output_salt, error, error_salt)
           values ($1, $2, $3, $4, $5, decode($6, 'hex'), $7, decode($8, 'hex'), $9, decode($10, 'hex'))`,
          [
            i.tenant_id,
            i.run.id,
            tr.id,
            s.step_index,
            JSON.stringify(s.input),
            s.input_salt,
            s.output === null ? null : JSON.stringify(s.output),
            s.output_salt,
            s.error,
            s.error_salt,
          ],
        );
      }
      for (const inc of i.incidents)
        await c.query(
          `insert into runproof.incidents select * from jsonb_populate_record(null::runproof.incidents, $1)`,
          [inc],
        );

      const texts = async (sql: string, params: unknown[]) =>
        (await c.query(sql, params)).rows.map((r) => (r.c as Buffer).toString("utf8"));
      t.deepEqual(
        await texts(`select runproof_private.run_canonical(r) c from runproof.runs r where id = $1`, [
          i.run.id,
        ]),
        [e.run.content],
      );
      t.deepEqual(
        await texts(`select runproof_private.run_seal_canonical(r) c from runproof.runs r where id = $1`, [
          i.run.id,
        ]),
        [e.run.seal],
      );
      t.deepEqual(
        await texts(
          `select runproof_private.trace_canonical(t) c from runproof.traces t where run_id = $1 order by attempt`,
          [i.run.id],
        ),
        e.traces.map((x) => x.seal),
      );
      t.deepEqual(
        await texts(
          `select runproof_private.step_canonical(s) c from runproof.trace_steps s join runproof.traces t on t.id = s.trace_id
            where t.run_id = $1 order by t.attempt, s.step_index`,
          [i.run.id],
        ),
        e.steps.map((x) => x.canonical),
      );
      t.deepEqual(
        await texts(
          `select runproof_private.decision_canonical(d) c from runproof.policy_decisions d join runproof.traces t on t.id = d.trace_id
            where t.run_id = $1 order by t.attempt, d.step_index`,
          [i.run.id],
        ),
        e.steps.map((x) => x.decision_canonical),
      );
      t.deepEqual(
        await texts(
          `select runproof_private.incident_canonical(i) c from runproof.incidents i where run_id = $1 order by created_at, id`,
          [i.run.id],
        ),
        e.incidents.map((x) => x.canonical),
      );
      const {
        rows: [p],
      } = await c.query(`select * from runproof.run_proof($1, $2)`, [i.tenant_id, i.run.id]);
      t.like(p, {
        verification_status: "VERIFIED",
        proof_format: 2,
        root_hash: e.run.root_hash,
        trace_count: 2,
        step_count: 3,
        chain_length: 3,
      });

      // The offline verifier, through Web Crypto (what the browser uses), on the exported bundle.
      const bundle = await exportBundle(c, i.tenant_id, i.run.id as string);
      t.is(bundle.run.content, e.run.content);
      t.is(bundle.run.seal, e.run.seal);
      const offline = await verifyBundle(JSON.parse(JSON.stringify(bundle)));
      t.like(offline, {
        reason: null,
        verification_status: "VERIFIED",
        root_hash: e.run.root_hash,
        trace_count: 2,
        step_count: 3,
        chain_length: 3,
      });
    } finally {
      await c.query("rollback");
    }
  });
});

// wait: sleeps as asked, and gives way at once to a cancellation or the step timeout.
import test from "ava";
import { runSkill } from "../src/skills/registry.ts";
import { SkillError } from "../src/skills/types.ts";
import { wait } from "../src/skills/wait.ts";
import { skillContext } from "./helpers/skills.ts";

async function skillError(p: Promise<unknown>): Promise<SkillError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (e instanceof SkillError) return e;
  throw e ?? new Error("expected a SkillError, but the call succeeded");
}

test("waits the given milliseconds and says so", async (t) => {
  const r = await runSkill(wait, { ms: 60 }, skillContext());
  t.deepEqual(r.output, { waited_ms: 60 });
  t.true(r.durationMs >= 55, `took ${r.durationMs} ms`);
  t.is(r.costCents, 0);
  t.deepEqual((await wait.run({ ms: 0 }, skillContext())).output, { waited_ms: 0 });
});

test("a cancelled step stops waiting at once (ABORTED, transient)", async (t) => {
  const ac = new AbortController();
  setTimeout(() => ac.abort(new Error("worker shutting down")), 30);
  const started = Date.now();
  const e = await skillError(wait.run({ ms: 60_000 }, skillContext({ signal: ac.signal })));
  t.like(e, { code: "ABORTED", transient: true });
  t.regex(e.message, /wait was aborted: worker shutting down/);
  t.true(Date.now() - started < 1000);
});

test("the step timeout ends a longer wait (TIMEOUT, transient)", async (t) => {
  const e = await skillError(runSkill(wait, { ms: 60_000 }, skillContext(), 50));
  t.like(e, { code: "TIMEOUT", transient: true });
  t.true(e.durationMs! < 1000);
});

test("ms must be a whole number from 0 to 600000", async (t) => {
  for (const input of [{ ms: 600_001 }, { ms: -1 }, { ms: 1.5 }, { ms: "10" }, {}]) {
    const e = await skillError(wait.run(input as never, skillContext()));
    t.like(e, { code: "INVALID_INPUT", transient: false }, JSON.stringify(input));
  }
  t.is(wait.defaultTimeoutMs > 600_000, true, "the default timeout leaves room for the longest wait");
});

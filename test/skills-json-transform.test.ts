// json_transform: reshaping data with JSONata, and clear permanent failures for bad expressions.
import test from "ava";
import { jsonTransform } from "../src/skills/json_transform.ts";
import { runSkill } from "../src/skills/registry.ts";
import { SkillError } from "../src/skills/types.ts";
import { skillContext } from "./helpers/skills.ts";

const data = {
  items: [
    { name: "a", price: 5 },
    { name: "b", price: 20 },
    { name: "c", price: 30 },
  ],
};

async function skillError(p: Promise<unknown>): Promise<SkillError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (e instanceof SkillError) return e;
  throw e ?? new Error("expected a SkillError, but the call succeeded");
}

test("evaluates an expression over data and returns {result}", async (t) => {
  const run = (expression: string, extra = {}) =>
    jsonTransform.run({ expression, data, ...extra }, skillContext());
  t.deepEqual((await run("items[price > 10].name")).output, { result: ["b", "c"] });
  t.deepEqual((await run("$sum(items.price)")).output, { result: 55 });
  t.deepEqual((await run('{ "count": $count(items), "first": items[0].name }')).output, {
    result: { count: 3, first: "a" },
  });
  t.deepEqual((await run("items[price > $min].name", { bindings: { min: 25 } })).output, { result: "c" });
});

test("no match is null, and the result is plain JSON", async (t) => {
  const { output } = await jsonTransform.run({ expression: "items[price > 100].name", data }, skillContext());
  t.deepEqual(output, { result: null });
  const r = (await jsonTransform.run({ expression: "items.price", data }, skillContext())).output as {
    result: unknown;
  };
  t.is(JSON.stringify(r), '{"result":[5,20,30]}');
  t.false(Object.hasOwn(r.result as object, "sequence"));
  // Without data the expression still runs.
  t.deepEqual((await jsonTransform.run({ expression: "1 + 2" }, skillContext())).output, { result: 3 });
});

test("an expression that does not parse is INVALID_EXPRESSION (permanent)", async (t) => {
  const e = await skillError(jsonTransform.run({ expression: "items[price >", data }, skillContext()));
  t.is(e.code, "INVALID_EXPRESSION");
  t.false(e.transient);
  t.regex(e.message, /^invalid JSONata expression: S0\d+ .+ at position \d+$/);
});

test("an expression that fails while evaluating is EVALUATION_ERROR (permanent)", async (t) => {
  const e = await skillError(
    jsonTransform.run({ expression: '$number("abc") + items', data }, skillContext()),
  );
  t.is(e.code, "EVALUATION_ERROR");
  t.false(e.transient);
  t.regex(e.message, /^JSONata evaluation failed: /);
});

test("runaway recursion is stopped by the guardrails", async (t) => {
  const e = await skillError(
    jsonTransform.run({ expression: "($f := function($n) { 1 + $f($n + 1) }; $f(0))" }, skillContext()),
  );
  t.is(e.code, "EVALUATION_ERROR");
  t.regex(e.message, /U1001|stack/i);
});

test("input is validated: an expression is required and unknown keys are refused", async (t) => {
  const missing = await skillError(runSkill(jsonTransform, { data }, skillContext()));
  t.is(missing.code, "INVALID_INPUT");
  t.regex(missing.message, /expression: /);
  const extra = await skillError(runSkill(jsonTransform, { expression: "1", dta: {} }, skillContext()));
  t.regex(extra.message, /Unrecognized key: "dta"/);
});

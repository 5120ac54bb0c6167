// The planners: the builtin one is deterministic; the LLM one is checked like any plan.
import test from "ava";
import { builtinPlan } from "../src/planner/builtin.ts";
import { llmPlan } from "../src/planner/llm.ts";
import { parsePlan, PlanError } from "../src/planner/plan.ts";
import { json, startHttpServer, testConfig } from "./helpers/worker.ts";

const SKILLS = ["http_call", "json_transform", "memory_put", "memory_get", "wait", "noop", "llm_complete"];

test("the builtin planner turns a goal into steps in the order the goal gives them", (t) => {
  const plan = builtinPlan(
    "wait 2 s, then fetch https://status.example.test/api and remember region = eu-west, recall owner",
    SKILLS,
  );
  t.deepEqual(
    plan.steps.map((s) => [s.skill, s.input]),
    [
      ["wait", { ms: 2000 }],
      ["http_call", { method: "GET", url: "https://status.example.test/api" }],
      ["memory_put", { key: "region", value: "eu-west" }],
      ["memory_get", { key: "owner" }],
    ],
  );
  t.is(plan.planner, "builtin");
  t.deepEqual(parsePlan(plan, SKILLS), plan);
});

test("the builtin planner is deterministic and uses only registered skills", (t) => {
  const goal = "fetch http://127.0.0.1:9/x and wait 10 ms";
  t.deepEqual(builtinPlan(goal, SKILLS), builtinPlan(goal, SKILLS));
  const noHttp = builtinPlan(goal, ["wait", "noop"]);
  t.deepEqual(
    noHttp.steps.map((s) => s.skill),
    ["wait"],
  );
  const fallback = builtinPlan("think hard about it", ["noop"]);
  t.deepEqual(fallback.steps, [
    { skill: "noop", title: "record the goal", input: { goal: "think hard about it" } },
  ]);
});

test("parsePlan rejects what SQL would reject, with the path", (t) => {
  const e = t.throws(() => parsePlan({ version: 1, steps: [{ skill: "nope" }] }, SKILLS), {
    instanceOf: PlanError,
  });
  t.regex(e!.message, /step 0 names unknown skill 'nope'/);
  const e2 = t.throws(() => parsePlan({ version: 1, steps: [{ skill: "noop", extra: 1 }] }, SKILLS));
  t.regex(e2!.message, /steps\.0/);
});

test("the LLM planner asks an OpenAI-compatible endpoint and validates its answer", async (t) => {
  let received: any;
  const server = await startHttpServer({
    "/v1/chat/completions": (req, body, res) => {
      received = { auth: req.headers.authorization, body: JSON.parse(body) };
      json(res, 200, {
        choices: [
          {
            message: {
              content: JSON.stringify({ version: 1, steps: [{ skill: "noop", input: { said: "hi" } }] }),
            },
          },
        ],
      });
    },
  });
  try {
    const config = testConfig({
      RUNPROOF_LLM_BASE_URL: `${server.url}/v1`,
      RUNPROOF_LLM_API_KEY: "sk-plan",
      RUNPROOF_PLANNER: "llm",
    });
    const plan = await llmPlan(
      "say hi",
      [{ name: "noop", description: "does nothing", inputSchema: {} }],
      config,
    );
    t.deepEqual(plan, { version: 1, planner: "llm", steps: [{ skill: "noop", input: { said: "hi" } }] });
    t.is(received.auth, "Bearer sk-plan");
    t.is(received.body.messages.at(-1).content, "say hi");
    t.regex(received.body.messages[0].content, /- noop: does nothing/);
  } finally {
    await server.close();
  }
});

test("the LLM planner's bad answers are permanent errors, its outages transient", async (t) => {
  let mode = "unknown-skill";
  const server = await startHttpServer({
    "/v1/chat/completions": (_req, _body, res) => {
      if (mode === "down") return json(res, 503, { error: "overloaded" });
      json(res, 200, {
        choices: [
          {
            message: {
              content:
                mode === "prose"
                  ? "Sure! Here is a plan"
                  : JSON.stringify({ version: 1, steps: [{ skill: "rm_rf" }] }),
            },
          },
        ],
      });
    },
  });
  try {
    const config = testConfig({ RUNPROOF_LLM_BASE_URL: `${server.url}/v1` });
    const skills = [{ name: "noop", description: "", inputSchema: {} }];
    const e1 = await t.throwsAsync(llmPlan("g", skills, config), { instanceOf: PlanError });
    t.false((e1 as PlanError).transient);
    t.regex(e1!.message, /unknown skill 'rm_rf'/);
    mode = "prose";
    const e2 = await t.throwsAsync(llmPlan("g", skills, config), { instanceOf: PlanError });
    t.regex(e2!.message, /not JSON/);
    mode = "down";
    const e3 = await t.throwsAsync(llmPlan("g", skills, config), { instanceOf: PlanError });
    t.true((e3 as PlanError).transient);
    const e4 = await t.throwsAsync(llmPlan("g", skills, testConfig()), { instanceOf: PlanError });
    t.regex(e4!.message, /RUNPROOF_LLM_BASE_URL is not set/);
  } finally {
    await server.close();
  }
});

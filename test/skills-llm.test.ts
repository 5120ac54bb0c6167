// llm_complete against a fake OpenAI-compatible server on 127.0.0.1.
import test from "ava";
import { llmComplete } from "../src/skills/llm_complete.ts";
import { runSkill } from "../src/skills/registry.ts";
import { SkillError } from "../src/skills/types.ts";
import { sendJson, skillContext, startServer, testConfig, type TestServer } from "./helpers/skills.ts";

let llm: TestServer;
let mode: "ok" | "500" | "429" | "401" | "garbage" | "hang" | "no-usage" = "ok";

test.before(async () => {
  llm = await startServer((req, res) => {
    if (req.method !== "POST" || req.url !== "/v1/chat/completions")
      return sendJson(res, 404, { error: "not found" });
    if (mode === "hang") return;
    if (mode === "500") return sendJson(res, 500, { error: { message: "upstream exploded" } });
    if (mode === "429")
      return sendJson(res, 429, { error: { message: "slow down" } }, { "retry-after": "1" });
    if (mode === "401" || req.headers.authorization !== "Bearer sk-test-123")
      return sendJson(res, 401, { error: { message: "bad key" } });
    if (mode === "garbage") return sendJson(res, 200, { nope: true });
    const body = JSON.parse(req.body);
    sendJson(res, 200, {
      id: "chatcmpl-1",
      model: `${body.model}-2024`,
      choices: [
        {
          index: 0,
          message: { role: "assistant", content: `echo: ${body.messages.at(-1).content}` },
          finish_reason: "stop",
        },
      ],
      ...(mode === "no-usage"
        ? {}
        : { usage: { prompt_tokens: 1200, completion_tokens: 300, total_tokens: 1500 } }),
    });
  });
});
test.after.always(() => llm?.close());
test.afterEach(() => {
  mode = "ok";
});

const config = (env: Record<string, string> = {}) =>
  testConfig({
    RUNPROOF_LLM_BASE_URL: `${llm.url}/v1/`,
    RUNPROOF_LLM_API_KEY: "sk-test-123",
    RUNPROOF_LLM_MODEL: "test-model",
    ...env,
  });

async function skillError(p: Promise<unknown>): Promise<SkillError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (e instanceof SkillError) return e;
  throw e ?? new Error("expected a SkillError, but the call succeeded");
}

test.serial(
  "sends an OpenAI-style request with the API key; returns text, model and usage; cost from tokens",
  async (t) => {
    const r = await runSkill(
      llmComplete,
      { prompt: "hello", system: "be brief", max_tokens: 50, temperature: 0.2 },
      skillContext({ config: config() }),
    );
    t.deepEqual(r.output, {
      text: "echo: hello",
      model: "test-model-2024",
      finish_reason: "stop",
      usage: { prompt_tokens: 1200, completion_tokens: 300, total_tokens: 1500 },
    });
    t.is(r.costCents, 0.15); // 1500 tokens at the default 0.1 cent per 1k
    const req = llm.requests.at(-1)!;
    t.is(req.headers.authorization, "Bearer sk-test-123");
    t.is(req.headers["content-type"], "application/json");
    t.deepEqual(JSON.parse(req.body), {
      model: "test-model",
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "hello" },
      ],
      max_tokens: 50,
      temperature: 0.2,
    });
  },
);

test.serial("messages and model can be given; the price per 1k tokens comes from the config", async (t) => {
  const messages = [
    { role: "user", content: "hi" },
    { role: "assistant", content: "hello" },
    { role: "user", content: "again" },
  ];
  const r = await runSkill(
    llmComplete,
    { messages, model: "other" },
    skillContext({ config: config({ RUNPROOF_LLM_CENTS_PER_1K_TOKENS: "0.25" }) }),
  );
  t.like(r.output, { text: "echo: again", model: "other-2024" });
  t.is(r.costCents, 0.375);
  t.deepEqual(JSON.parse(llm.requests.at(-1)!.body), { model: "other", messages });
});

test.serial("without reported usage the cost falls back to the estimate", async (t) => {
  mode = "no-usage";
  const r = await runSkill(llmComplete, { prompt: "x" }, skillContext({ config: config() }));
  t.like(r.output, { usage: null });
  t.is(r.costCents, llmComplete.costCents);
});

test.serial("5xx and 429 are transient; 401 is permanent", async (t) => {
  mode = "500";
  const e500 = await skillError(llmComplete.run({ prompt: "x" }, skillContext({ config: config() })));
  t.like(e500, { code: "HTTP_STATUS", transient: true, details: { status: 500 } });
  t.regex(e500.message, /returned HTTP 500: .*upstream exploded/);
  mode = "429";
  t.like(await skillError(llmComplete.run({ prompt: "x" }, skillContext({ config: config() }))), {
    code: "HTTP_STATUS",
    transient: true,
  });
  mode = "401";
  t.like(await skillError(llmComplete.run({ prompt: "x" }, skillContext({ config: config() }))), {
    code: "HTTP_STATUS",
    transient: false,
  });
});

test.serial("a response that is not a chat completion is LLM_BAD_RESPONSE (permanent)", async (t) => {
  mode = "garbage";
  t.like(await skillError(llmComplete.run({ prompt: "x" }, skillContext({ config: config() }))), {
    code: "LLM_BAD_RESPONSE",
    transient: false,
  });
});

test.serial(
  "a model that does not answer within RUNPROOF_LLM_TIMEOUT_MS is TIMEOUT (transient)",
  async (t) => {
    mode = "hang";
    const e = await skillError(
      llmComplete.run({ prompt: "x" }, skillContext({ config: config({ RUNPROOF_LLM_TIMEOUT_MS: "100" }) })),
    );
    t.like(e, { code: "TIMEOUT", transient: true });
    t.regex(e.message, /timed out after 100 ms/);
  },
);

test("without RUNPROOF_LLM_BASE_URL the skill says how to configure it (permanent)", async (t) => {
  const e = await skillError(llmComplete.run({ prompt: "x" }, skillContext()));
  t.like(e, { code: "LLM_NOT_CONFIGURED", transient: false });
  t.regex(e.message, /RUNPROOF_LLM_BASE_URL/);
});

test("input needs exactly one of prompt or messages", async (t) => {
  for (const input of [
    {},
    { prompt: "a", messages: [{ role: "user", content: "b" }] },
    { messages: [] },
    { prompt: "a", temperature: 3 },
  ]) {
    t.like(
      await skillError(llmComplete.run(input as never, skillContext({ config: config() }))),
      { code: "INVALID_INPUT" },
      JSON.stringify(input),
    );
  }
});

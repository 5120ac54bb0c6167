// The LLM planner: asks an OpenAI-compatible chat-completions endpoint for a plan that uses
// only the registered skills, then validates the answer like any other plan.
import type { Config } from "../lib/config.ts";
import { parsePlan, PlanError, type Plan } from "./plan.ts";

export interface SkillDescription {
  name: string;
  description: string;
  inputSchema: unknown;
}

export async function llmPlan(
  goal: string,
  skills: readonly SkillDescription[],
  config: Config,
  signal?: AbortSignal,
): Promise<Plan> {
  if (!config.llmBaseUrl)
    throw new PlanError("the LLM planner is selected but RUNPROOF_LLM_BASE_URL is not set");
  const system = [
    "You are the planner of an agent run ledger. Turn the user's goal into a JSON plan.",
    'Answer with one JSON object only: {"version":1,"planner":"llm","steps":[{"skill":"<name>","input":{...},"title":"<short>"}]}.',
    "Use only these skills (name: description; input JSON schema):",
    ...skills.map((s) => `- ${s.name}: ${s.description}; input ${JSON.stringify(s.inputSchema)}`),
  ].join("\n");
  const timeout = AbortSignal.timeout(config.llmTimeoutMs);
  let res: Response;
  try {
    res = await fetch(`${config.llmBaseUrl.replace(/\/$/, "")}/chat/completions`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(config.llmApiKey ? { authorization: `Bearer ${config.llmApiKey}` } : {}),
      },
      body: JSON.stringify({
        model: config.llmModel,
        temperature: 0,
        response_format: { type: "json_object" },
        messages: [
          { role: "system", content: system },
          { role: "user", content: goal },
        ],
      }),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
  } catch (e) {
    throw new PlanError(`the LLM planner could not be reached: ${(e as Error).message}`, true);
  }
  if (!res.ok) {
    const transient = res.status >= 500 || res.status === 429;
    throw new PlanError(`the LLM planner answered HTTP ${res.status}`, transient);
  }
  const body = (await res.json().catch(() => null)) as {
    choices?: { message?: { content?: string } }[];
  } | null;
  const content = body?.choices?.[0]?.message?.content;
  if (typeof content !== "string") throw new PlanError("the LLM planner's answer has no message content");
  let raw: unknown;
  try {
    raw = JSON.parse(content.replace(/^```(?:json)?\s*|\s*```$/g, ""));
  } catch {
    throw new PlanError("the LLM planner's answer is not JSON");
  }
  if (raw && typeof raw === "object" && !("planner" in raw)) (raw as Record<string, unknown>).planner = "llm";
  return parsePlan(
    raw,
    skills.map((s) => s.name),
  );
}

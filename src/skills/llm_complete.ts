// llm_complete: one chat completion from an OpenAI-compatible endpoint
// (RUNPROOF_LLM_BASE_URL). The cost recorded for the step is computed from the
// tokens the provider reports, not from the estimate the budget policy used.
import { z } from "zod";
import { callSignal, fetchFailure, isTransientStatus, readBodyLimited, snippet } from "./http-util.ts";
import { defineSkill, SkillError } from "./types.ts";

const message = z.strictObject({
  role: z.enum(["system", "user", "assistant"]),
  content: z.string(),
});

export const llmCompleteInput = z
  .strictObject({
    prompt: z.string().min(1).optional().describe("A single user message (alternative to messages)"),
    system: z.string().optional().describe("System message sent before prompt"),
    messages: z.array(message).min(1).optional().describe("Chat messages (alternative to prompt)"),
    model: z.string().min(1).optional().describe("Defaults to RUNPROOF_LLM_MODEL"),
    max_tokens: z.number().int().min(1).max(1_000_000).optional(),
    temperature: z.number().min(0).max(2).optional(),
  })
  .refine((v) => (v.prompt === undefined) !== (v.messages === undefined), {
    message: "give exactly one of prompt or messages",
  })
  .refine((v) => v.system === undefined || v.prompt !== undefined, {
    message: "system goes with prompt; with messages, add a system message instead",
  });

export type LlmCompleteInput = z.output<typeof llmCompleteInput>;

export interface LlmUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface LlmCompleteOutput {
  text: string;
  model: string;
  finish_reason: string | null;
  usage: LlmUsage | null;
}

const completionResponse = z.object({
  model: z.string().optional(),
  choices: z
    .array(
      z.object({
        message: z.object({ content: z.string().nullable().optional() }),
        finish_reason: z.string().nullable().optional(),
      }),
    )
    .min(1),
  usage: z
    .object({
      prompt_tokens: z.number().nonnegative().default(0),
      completion_tokens: z.number().nonnegative().default(0),
      total_tokens: z.number().nonnegative(),
    })
    .optional(),
});

/** Cents for a token count, rounded to the ledger's 4 decimals. */
export function llmCostCents(totalTokens: number, centsPer1kTokens: number): number {
  return Math.round((totalTokens / 1000) * centsPer1kTokens * 10000) / 10000;
}

export const llmComplete = defineSkill({
  name: "llm_complete",
  description:
    "Asks the configured OpenAI-compatible model for a chat completion; returns {text, model, finish_reason, usage}. " +
    "The step's cost comes from the reported token usage.",
  input: llmCompleteInput,
  sideEffects: false,
  defaultTimeoutMs: 60000,
  // A budget estimate only (about 10k tokens at the default price); the real cost replaces it.
  costCents: 1,
  async run(input, ctx) {
    const { config } = ctx;
    if (!config.llmBaseUrl) {
      throw new SkillError(
        "no LLM is configured: set RUNPROOF_LLM_BASE_URL (and RUNPROOF_LLM_API_KEY if it needs one)",
        {
          code: "LLM_NOT_CONFIGURED",
          transient: false,
        },
      );
    }
    const messages = input.messages ?? [
      ...(input.system !== undefined ? [{ role: "system" as const, content: input.system }] : []),
      { role: "user" as const, content: input.prompt! },
    ];
    const model = input.model ?? config.llmModel;
    const request = {
      model,
      messages,
      ...(input.max_tokens !== undefined && { max_tokens: input.max_tokens }),
      ...(input.temperature !== undefined && { temperature: input.temperature }),
    };
    const headers: Record<string, string> = {
      "content-type": "application/json",
      accept: "application/json",
    };
    if (config.llmApiKey) headers.authorization = `Bearer ${config.llmApiKey}`;

    const url = `${config.llmBaseUrl}/chat/completions`;
    const what = `LLM request to ${new URL(url).origin}`;
    const call = callSignal(ctx.signal, config.llmTimeoutMs);
    let bytes: Uint8Array;
    let res: Response;
    try {
      res = await fetch(url, { method: "POST", headers, body: JSON.stringify(request), signal: call.signal });
      bytes = await readBodyLimited(res, config.httpMaxResponseBytes, what);
    } catch (err) {
      throw fetchFailure(err, call, what);
    }
    if (!res.ok) {
      const text = snippet(bytes);
      throw new SkillError(`${what} returned HTTP ${res.status}${text ? `: ${text}` : ""}`, {
        code: "HTTP_STATUS",
        transient: isTransientStatus(res.status),
        details: { status: res.status },
      });
    }

    let body: z.output<typeof completionResponse>;
    try {
      body = completionResponse.parse(JSON.parse(new TextDecoder().decode(bytes)));
    } catch (err) {
      throw new SkillError(`${what} returned something that is not a chat completion: ${snippet(bytes)}`, {
        code: "LLM_BAD_RESPONSE",
        transient: false,
        cause: err,
      });
    }
    const [choice] = body.choices;
    const usage = body.usage ?? null;
    const output: LlmCompleteOutput = {
      text: choice.message.content ?? "",
      model: body.model ?? model,
      finish_reason: choice.finish_reason ?? null,
      usage,
    };
    // No usage reported: leave the cost unset so the caller falls back to the estimate.
    return usage
      ? { output, costCents: llmCostCents(usage.total_tokens, config.llmCentsPer1kTokens) }
      : { output };
  },
});

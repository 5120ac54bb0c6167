// wait: sleeps, for plans that poll or pace themselves. Abortable, so a cancelled
// job or a stopping worker never sits out a long wait.
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { abortedError, defineSkill } from "./types.ts";

export const MAX_WAIT_MS = 600_000;

export const waitInput = z.strictObject({
  ms: z.number().int().min(0).max(MAX_WAIT_MS).describe(`Milliseconds to wait, at most ${MAX_WAIT_MS}`),
});

export type WaitInput = z.output<typeof waitInput>;

export const wait = defineSkill({
  name: "wait",
  description: `Waits ms milliseconds (at most ${MAX_WAIT_MS}); returns {waited_ms}.`,
  input: waitInput,
  sideEffects: false,
  // Room for the longest allowed wait plus scheduling slack.
  defaultTimeoutMs: MAX_WAIT_MS + 10_000,
  costCents: 0,
  async run(input, ctx) {
    try {
      // Node's timers may fire a fraction of a millisecond early by performance.now(), which
      // times the step: sleep again until the whole wait has passed.
      const until = performance.now() + input.ms;
      for (let left = input.ms; left > 0; left = until - performance.now())
        await sleep(Math.ceil(left), undefined, { signal: ctx.signal });
    } catch (err) {
      if (ctx.signal.aborted) throw abortedError(ctx.signal, "wait");
      throw err;
    }
    return { output: { waited_ms: input.ms } };
  },
});

// noop: echoes its input. Free and instant: for tests, benchmarks and demos of
// the ledger itself without any outside dependency.
import { z } from "zod";
import { defineSkill } from "./types.ts";

export const noopInput = z
  .record(z.string(), z.unknown())
  .default({})
  .describe("Any JSON object; echoed back");

export type NoopInput = z.output<typeof noopInput>;

export const noop = defineSkill({
  name: "noop",
  description: "Does nothing and returns {echo: input}.",
  input: noopInput,
  sideEffects: false,
  defaultTimeoutMs: 5000,
  costCents: 0,
  async run(input) {
    return { output: { echo: input } };
  },
});

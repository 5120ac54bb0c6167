// Maps a database failure inside a skill to a SkillError: lost connections,
// deadlocks and overload may pass on another attempt; anything else will not.
import { SkillError } from "./types.ts";

// SQLSTATE classes/codes worth retrying: connection (08), transaction rollback such as
// serialization failure and deadlock (40), insufficient resources (53), operator
// intervention such as admin shutdown (57), system errors (58).
const TRANSIENT_SQLSTATE = /^(08|40|53|57|58)/;
const TRANSIENT_NODE = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

export function databaseFailure(err: unknown, what: string): SkillError {
  if (err instanceof SkillError) return err;
  const code = (err as { code?: unknown }).code;
  const message = (err as Error)?.message ?? String(err);
  const transient =
    (typeof code === "string" && (TRANSIENT_SQLSTATE.test(code) || TRANSIENT_NODE.has(code))) ||
    /Connection terminated|timeout exceeded when trying to connect/i.test(message);
  return new SkillError(`${what} failed: ${message}`, {
    code: "DATABASE_ERROR",
    transient,
    cause: err,
    details: typeof code === "string" ? { code } : undefined,
  });
}

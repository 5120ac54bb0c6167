// What a GraphQL client sees when something fails.
//
// Errors the ledger raises on purpose carry a SQLSTATE and say what to do
// (message + HINT); they reach the client as they are, with
// extensions { code: SQLSTATE, hint, detail }. These are the classes:
//   RP***  RunProof's own (RPVAL invalid input, RPNFD not found, RPORS reserved
//          origin, RPSTS wrong status, RPIMM immutability, RPPLN/RPSKL plan, ...)
//   22***  data exceptions: input Postgres cannot take as it is (a NUL byte, an invalid
//          UTF-8 sequence, \u0000 or a lone surrogate in JSON, a malformed value)
//   23***  integrity constraint violations (not null, check, foreign key, unique)
//   28000  invalid authorization (unknown or revoked API key)
//   42501  insufficient privilege (e.g. another tenant's id)
//   P0001  a plain RAISE EXCEPTION
// Anything else (a bug, a lost connection, a syntax error in generated SQL) is
// masked: the client gets a generic message and an error id, and the full
// error is logged server-side under that id. No SQL text and no stack trace
// ever leave the server.
import { randomBytes } from "node:crypto";
import { GraphQLError, type GraphQLFormattedError } from "postgraphile/graphql";
import { isSafeError } from "postgraphile/grafast";
import type { Logger } from "../lib/log.ts";

export interface PgLikeError {
  code: string;
  message: string;
  hint?: string;
  detail?: string;
  severity?: string;
}

/** SQLSTATEs whose message is written for the caller. */
export function isLedgerSqlState(code: string): boolean {
  return (
    /^RP[0-9A-Z]{3}$/.test(code) ||
    /^2[23][0-9A-Z]{3}$/.test(code) ||
    code === "28000" ||
    code === "42501" ||
    code === "P0001"
  );
}

function isPgError(e: unknown): e is PgLikeError {
  if (!e || typeof e !== "object") return false;
  const { code, message } = e as { code?: unknown; message?: unknown };
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) && typeof message === "string";
}

/** Follows originalError / cause links to the first Postgres error, if any. */
export function findPgError(error: unknown): PgLikeError | null {
  const seen = new Set<unknown>();
  let e: unknown = error;
  while (e && typeof e === "object" && !seen.has(e)) {
    seen.add(e);
    if (isPgError(e)) return e;
    const next = (e as { originalError?: unknown }).originalError ?? (e as { cause?: unknown }).cause;
    e = next;
  }
  return null;
}

export function newErrorId(): string {
  return randomBytes(6).toString("hex");
}

/** grafserv's maskError: keep ledger and deliberate errors, mask the rest. */
export function makeMaskError(
  logger: Logger,
  opts: { statementTimeoutMs?: number } = {},
): (error: GraphQLError) => GraphQLError | GraphQLFormattedError {
  return function maskError(error) {
    const original = error.originalError;
    // Validation and parse errors ("Cannot query field ...") have no original error.
    if (!original) return error;

    const pgError = findPgError(original);
    if (pgError?.code === "57014" && /statement timeout/.test(pgError.message)) {
      // The request's statement_timeout (RUNPROOF_GRAPHQL_STATEMENT_TIMEOUT_MS) cancelled it.
      const limit = opts.statementTimeoutMs;
      return new GraphQLError(
        `The request took longer than the statement timeout${limit ? ` of ${limit} ms` : ""} and was cancelled.`,
        {
          nodes: error.nodes,
          source: error.source,
          positions: error.positions,
          path: error.path,
          originalError: original,
          extensions: {
            code: "STATEMENT_TIMEOUT",
            sqlstate: "57014",
            hint: "ask for less at once: fewer rows (first), fewer proofs, or page with after",
            ...(limit ? { limit } : {}),
          },
        },
      );
    }
    // Errors thrown as GraphQLErrors on purpose (grafast, grafserv), unless they wrap a database error.
    if (!pgError && original instanceof GraphQLError) return error;
    if (pgError && isLedgerSqlState(pgError.code)) {
      return new GraphQLError(pgError.message, {
        nodes: error.nodes,
        source: error.source,
        positions: error.positions,
        path: error.path,
        originalError: original,
        extensions: {
          code: pgError.code,
          ...(pgError.hint ? { hint: pgError.hint } : {}),
          ...(pgError.detail ? { detail: pgError.detail } : {}),
        },
      });
    }

    if (!pgError && isSafeError(original)) {
      // Thrown by our own plans (e.g. "run not found" in a subscription) with a caller-facing message.
      return new GraphQLError(original.message, {
        nodes: error.nodes,
        source: error.source,
        positions: error.positions,
        path: error.path,
        originalError: original,
        extensions: original.extensions ?? {},
      });
    }

    const errorId = newErrorId();
    logger.error(
      { errorId, err: original, path: error.path, sqlstate: pgError?.code },
      "unexpected GraphQL error (masked for the client)",
    );
    return new GraphQLError(
      `An unexpected error occurred (error id ${errorId}). It has been logged; quote the error id when reporting it.`,
      {
        nodes: error.nodes,
        source: error.source,
        positions: error.positions,
        path: error.path,
        extensions: { code: "INTERNAL_SERVER_ERROR", errorId },
      },
    );
  };
}

// Request bodies the GraphQL API refuses before any GraphQL runs, with a 400 that says why, on
// every way in (a POST of any content type, a WebSocket message):
//   - bytes that are not UTF-8 (decoding would silently turn them into U+FFFD; an
//     application/graphql body once stored FF FE in a goal that way),
//   - a lone UTF-16 surrogate in a JSON string ("\ud800"): it has no UTF-8 form, so the
//     database driver would silently store U+FFFD instead of what was sent,
//   - JSON nested deeper than MAX_JSON_DEPTH: serialising it again for Postgres overflows the
//     stack, which surfaced as a masked "unexpected error".
//   - a number no 64-bit float holds exactly (JSON.parse would round it: a plan would run with
//     another number than the one recorded),
// GraphQL documents themselves (brackets nested too deep, a query too costly) are checked by
// src/graphql/limits.ts. Malformed JSON is left to grafserv, which answers 400.
import { firstInexactNumber } from "../lib/exact-json.ts";

/** How deep JSON (and, in limits.ts, a GraphQL document's brackets) may nest. */
export const MAX_JSON_DEPTH = 256;

export interface InputProblem {
  code: "INVALID_UTF8" | "INVALID_UNICODE" | "JSON_TOO_DEEP" | "INEXACT_NUMBER";
  message: string;
  hint: string;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
// A high surrogate not followed by a low one, or a low one not preceded by a high one (code units, no u flag).
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The body as text, or the problem with its bytes. */
export function decodeUtf8(body: Uint8Array): { text: string } | { problem: InputProblem } {
  try {
    return { text: utf8.decode(body) };
  } catch {
    return {
      problem: {
        code: "INVALID_UTF8",
        message: "The request body is not valid UTF-8; send text encoded as UTF-8.",
        hint: "encode the request as UTF-8 (and say so: content-type: application/json; charset=utf-8)",
      },
    };
  }
}

/** The first problem with a raw JSON request body, or null when it may go on. */
export function checkJsonBody(body: Uint8Array): InputProblem | null {
  const decoded = decodeUtf8(body);
  if ("problem" in decoded) return decoded.problem;
  return checkJsonText(decoded.text).problem;
}

/**
 * Parses JSON text and checks every string and key in it. `value` is undefined when the text
 * is not JSON (the caller reports that its own way).
 */
export function checkJsonText(text: string): { problem: InputProblem | null; value?: unknown } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { problem: null };
  }
  const problem = checkJsonValue(value);
  if (problem) return { problem, value };
  // JSON.parse rounded every number no double holds: what it returned is not what was sent.
  const inexact = firstInexactNumber(text);
  if (inexact) {
    return {
      problem: {
        code: "INEXACT_NUMBER",
        message: `The number at ${inexact} cannot be held exactly by a 64-bit float: RunProof would record and run another number than the one sent.`,
        hint: "pass such numbers as strings, or round them to a value a double holds",
      },
      value,
    };
  }
  return { problem: null, value };
}

/** The first problem in a parsed JSON value (lone surrogates, nesting), or null. */
export function checkJsonValue(value: unknown): InputProblem | null {
  // Iterative walk: the depth check must not overflow the stack it protects.
  const stack: Array<{ v: unknown; depth: number; path: string }> = [{ v: value, depth: 0, path: "" }];
  while (stack.length) {
    const { v, depth, path } = stack.pop()!;
    if (typeof v === "string") {
      if (LONE_SURROGATE.test(v)) return loneSurrogate(`The value at ${path || "the top level"}`);
      continue;
    }
    if (v === null || typeof v !== "object") continue;
    if (depth >= MAX_JSON_DEPTH) {
      const at = path.length > 80 ? `${path.slice(0, 80)}...` : path;
      return {
        code: "JSON_TOO_DEEP",
        message: `The request nests JSON more than ${MAX_JSON_DEPTH} levels deep (at ${at}); flatten the data.`,
        hint: `nest JSON values at most ${MAX_JSON_DEPTH} levels deep`,
      };
    }
    for (const [k, child] of Array.isArray(v) ? v.entries() : Object.entries(v)) {
      const childPath = `${path}${Array.isArray(v) ? `[${k}]` : `.${k}`}`;
      if (typeof k === "string" && LONE_SURROGATE.test(k)) {
        return loneSurrogate(`A key at ${path || "the top level"}`);
      }
      stack.push({ v: child, depth: depth + 1, path: childPath });
    }
  }
  return null;
}

function loneSurrogate(where: string): InputProblem {
  return {
    code: "INVALID_UNICODE",
    message: `${where} contains a lone UTF-16 surrogate (an unpaired \\uD800-\\uDFFF), which is not valid Unicode text; send well-formed strings.`,
    hint: "send well-formed Unicode strings: a \\uD800-\\uDBFF escape must be followed by a \\uDC00-\\uDFFF one",
  };
}

// Request bodies the GraphQL API refuses before any GraphQL runs, with a 400 that says why:
//   - bytes that are not UTF-8 (decoding would silently turn them into U+FFFD),
//   - a lone UTF-16 surrogate in a JSON string ("\ud800"): it has no UTF-8 form, so the
//     database driver would silently store U+FFFD instead of what was sent,
//   - JSON nested deeper than MAX_JSON_DEPTH: serialising it again for Postgres overflows the
//     stack, which surfaced as a masked "unexpected error".
// Everything else (malformed JSON, oversized bodies) is left to grafserv, which answers 400/413.

export const MAX_JSON_DEPTH = 256;

export interface InputProblem {
  code: "INVALID_UTF8" | "INVALID_UNICODE" | "JSON_TOO_DEEP";
  message: string;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
// A high surrogate not followed by a low one, or a low one not preceded by a high one (code units, no u flag).
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The first problem with a raw JSON request body, or null when it may go on. */
export function checkJsonBody(body: Uint8Array): InputProblem | null {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    return {
      code: "INVALID_UTF8",
      message: "The request body is not valid UTF-8; send text encoded as UTF-8.",
    };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null; // grafserv reports malformed JSON itself
  }
  // Iterative walk: the depth check must not overflow the stack it protects.
  const stack: Array<{ v: unknown; depth: number; path: string }> = [{ v: value, depth: 0, path: "" }];
  while (stack.length) {
    const { v, depth, path } = stack.pop()!;
    if (typeof v === "string") {
      if (LONE_SURROGATE.test(v)) {
        return {
          code: "INVALID_UNICODE",
          message: `The value at ${path || "the top level"} contains a lone UTF-16 surrogate (an unpaired \\uD800-\\uDFFF), which is not valid Unicode text; send well-formed strings.`,
        };
      }
      continue;
    }
    if (v === null || typeof v !== "object") continue;
    if (depth >= MAX_JSON_DEPTH) {
      const at = path.length > 80 ? `${path.slice(0, 80)}...` : path;
      return {
        code: "JSON_TOO_DEEP",
        message: `The request nests JSON more than ${MAX_JSON_DEPTH} levels deep (at ${at}); flatten the data.`,
      };
    }
    for (const [k, child] of Array.isArray(v) ? v.entries() : Object.entries(v)) {
      const childPath = `${path}${Array.isArray(v) ? `[${k}]` : `.${k}`}`;
      if (typeof k === "string" && LONE_SURROGATE.test(k)) {
        return {
          code: "INVALID_UNICODE",
          message: `A key at ${path || "the top level"} contains a lone UTF-16 surrogate, which is not valid Unicode text; send well-formed strings.`,
        };
      }
      stack.push({ v: child, depth: depth + 1, path: childPath });
    }
  }
  return null;
}

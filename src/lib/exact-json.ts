// JSON numbers that JavaScript would change: the worker and its skills run on JavaScript numbers
// (IEEE 754 doubles), so a plan number no double holds exactly would run as another value than the
// one recorded. The database refuses such plans (RPPLN, runproof_private.inexact_number); an
// interface that parses JSON itself (the CLI, GraphQL) must refuse them before parsing rounds them
// away unseen. No node: imports (shared with the web page).
import { parse as parseLossless } from "lossless-json";

/** A decimal's value as sign, significant digits and exponent: "1.50e1" and "15" are the same. */
function decimal(text: string): { neg: boolean; digits: string; exp: number } | null {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m) return null;
  const [, sign, int, frac = "", exp = "0"] = m;
  let digits = int + frac;
  let e = Number.parseInt(exp, 10) - frac.length;
  const lead = digits.match(/^0*/)![0].length;
  digits = digits.slice(lead);
  const trail = digits.match(/0*$/)![0].length;
  digits = digits.slice(0, digits.length - trail);
  e += trail;
  if (!digits) return { neg: false, digits: "", exp: 0 };
  return { neg: sign === "-", digits, exp: e };
}

/** Whether a JSON number's text is exactly the value of the nearest double. */
export function isExactDouble(text: string): boolean {
  const n = Number(text);
  if (!Number.isFinite(n)) return false;
  const a = decimal(text);
  // String(n) is the shortest text that reads back as n; equal values mean n holds the text exactly.
  const b = decimal(String(n).replace(/^-?0$/, "0"));
  if (!a || !b) return false;
  return a.digits === b.digits && a.exp === b.exp && (a.neg === b.neg || a.digits === "");
}

class Inexact {
  constructor(readonly text: string) {}
}

/** The first number in a JSON text (as "path = number") that no double holds exactly, or null. */
export function firstInexactNumber(jsonText: string, root = "$"): string | null {
  let value: unknown;
  try {
    // parseNumber sees every number's text before anything could round it.
    value = parseLossless(jsonText, null, (text: string) => (isExactDouble(text) ? 0 : new Inexact(text)));
  } catch {
    return null; // not JSON: the caller reports that itself
  }
  const stack: [unknown, string][] = [[value, root]];
  while (stack.length) {
    const [v, path] = stack.pop()!;
    if (v instanceof Inexact) return `${path} = ${v.text}`;
    if (v && typeof v === "object") {
      const entries = Array.isArray(v)
        ? v.map((x, i) => [x, `${path}[${i}]`] as [unknown, string])
        : Object.entries(v).map(([k, x]) => [x, `${path}.${k}`] as [unknown, string]);
      stack.push(...entries.reverse());
    }
  }
  return null;
}

// The deterministic built-in planner: the same goal always gives the same plan, built only
// from registered skills. It reads a few plain-English forms; anything else becomes a
// single noop step that records the goal.
import type { Plan, PlanStep } from "./plan.ts";

const URL_RE = /\bhttps?:\/\/[^\s<>"'`]+[^\s<>"'`.,;:!?)]/gi;
const REMEMBER_RE =
  /\bremember\s+([\w.-]{1,200})\s*(?:=|\bis\b|\bas\b)\s*("[^"]*"|[^,;]+?)(?=\s*(?:[,;]|\band\b|$))/gi;
const RECALL_RE = /\brecall\s+([\w.-]{1,200})/gi;
const WAIT_RE = /\bwait\s+(\d{1,6})\s*(ms|milliseconds?|s|secs?|seconds?)\b/gi;
const EXTRACT_RE = /\bextract\s+`([^`]+)`/gi;

interface Match {
  index: number;
  step: PlanStep;
}

export function builtinPlan(goal: string, skills: readonly string[]): Plan {
  const has = (s: string) => skills.includes(s);
  const found: Match[] = [];
  const scan = (re: RegExp, make: (m: RegExpExecArray) => PlanStep | null) => {
    for (const m of goal.matchAll(re)) {
      const step = make(m);
      if (step && has(step.skill)) found.push({ index: m.index ?? 0, step });
    }
  };
  scan(URL_RE, (m) => ({ skill: "http_call", title: `GET ${m[0]}`, input: { method: "GET", url: m[0] } }));
  scan(REMEMBER_RE, (m) => {
    const raw = m[2].trim();
    const value = raw.startsWith('"') ? raw.slice(1, -1) : raw;
    return { skill: "memory_put", title: `remember ${m[1]}`, input: { key: m[1], value } };
  });
  scan(RECALL_RE, (m) => ({ skill: "memory_get", title: `recall ${m[1]}`, input: { key: m[1] } }));
  scan(WAIT_RE, (m) => {
    const n = Number(m[1]);
    const ms = /^m/i.test(m[2]) ? n : n * 1000;
    return { skill: "wait", title: `wait ${ms} ms`, input: { ms: Math.min(ms, 600_000) } };
  });
  scan(EXTRACT_RE, (m) => ({
    skill: "json_transform",
    title: `extract ${m[1]}`,
    input: { expression: m[1], data: {} },
  }));
  // Steps run in the order the goal mentions them.
  found.sort((a, b) => a.index - b.index);
  const steps = found.map((f) => f.step);
  if (steps.length === 0) {
    if (!has("noop"))
      throw new Error("the builtin planner needs the noop skill for goals it cannot break down");
    steps.push({ skill: "noop", title: "record the goal", input: { goal } });
  }
  return { version: 1, planner: "builtin", steps };
}

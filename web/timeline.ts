// A trace's step timeline: one SVG, one row per step, each step a bar from its start to its finish,
// coloured by status, the first bad step outlined. The bars of one status are one <path> (a handful of
// elements however many steps), so a 1,000-step trace renders in a few milliseconds.
// The bars are a picture (role img) for screen readers; the step table below is the accessible,
// keyboard-operable list of the same steps.
import { useState } from "preact/hooks";
import { duration, html } from "./ui.ts";

export interface TimelineStep {
  traceId: string;
  attempt: number;
  stepIndex: number;
  planStep: number;
  skill: string;
  status: string;
  policyDecision: string;
  startedAt: string;
  finishedAt: string;
  durationMs: string | number;
  costCents: string | number;
}

const WIDTH = 1000;
const LABEL = 0;

export function Timeline({
  steps,
  selected,
  bad,
  onSelect,
}: {
  steps: TimelineStep[];
  selected: string | null;
  bad: string | null;
  onSelect: (key: string) => void;
}) {
  const [hover, setHover] = useState<number | null>(null);
  if (steps.length === 0) return html`<p class="note">No steps recorded yet.</p>`;
  let t0 = Number.POSITIVE_INFINITY;
  let t1 = Number.NEGATIVE_INFINITY;
  const times = steps.map((s) => {
    const a = Date.parse(s.startedAt);
    const b = Math.max(a, Date.parse(s.finishedAt));
    if (a < t0) t0 = a;
    if (b > t1) t1 = b;
    return [a, b] as const;
  });
  const span = Math.max(1, t1 - t0);
  const rowH = steps.length <= 40 ? 16 : steps.length <= 200 ? 6 : 3;
  const gap = rowH >= 6 ? 2 : 0;
  const height = steps.length * rowH;
  const scale = (WIDTH - LABEL) / span;
  // One <path> per status, a rectangle per step in it: a handful of elements whatever the step count.
  const paths = new Map<string, string[]>();
  const rectOf = (i: number) => {
    const [a, b] = times[i]!;
    return {
      x: LABEL + (a - t0) * scale,
      y: i * rowH + gap / 2,
      w: Math.max(2, (b - a) * scale),
      h: rowH - gap,
    };
  };
  const keys = steps.map((s) => `${s.traceId}:${s.stepIndex}`);
  steps.forEach((s, i) => {
    const r = rectOf(i);
    const d = `M${r.x.toFixed(2)} ${r.y}h${r.w.toFixed(2)}v${r.h}h${(-r.w).toFixed(2)}z`;
    const list = paths.get(s.status);
    if (list) list.push(d);
    else paths.set(s.status, [d]);
  });
  const mark = (key: string | null, cls: string) => {
    const i = key ? keys.indexOf(key) : -1;
    if (i < 0) return null;
    const r = rectOf(i);
    return html`<rect class=${cls} data-key=${key} x=${r.x} y=${r.y} width=${r.w} height=${r.h} />`;
  };
  const indexAt = (e: MouseEvent) => {
    const box = (e.currentTarget as SVGSVGElement).getBoundingClientRect();
    const i = Math.floor(((e.clientY - box.top) / box.height) * steps.length);
    return Math.min(steps.length - 1, Math.max(0, i));
  };
  const pick = (e: MouseEvent) => {
    const key = keys[indexAt(e)];
    if (key) onSelect(key);
  };
  const h = hover === null ? null : steps[hover];
  const summary = `Timeline of ${steps.length} steps over ${Math.round(span)} ms: ${
    steps.filter((s) => s.status === "succeeded").length
  } succeeded, ${steps.filter((s) => s.status === "failed").length} failed, ${
    steps.filter((s) => s.status === "denied").length
  } denied${bad ? `; first bad step ${bad.split(":")[1]}` : ""}`;
  return html`<div class="timeline-wrap" tabindex="0" role="region" aria-label="Step timeline (scrolls)">
    <div class="axis" aria-hidden="true">
      <span>0 ms</span>
      <span class="hover">${
        h
          ? `step ${h.stepIndex} · ${h.skill} · ${h.status} · policy ${h.policyDecision} · ${duration(Number(h.durationMs))} · ${h.costCents} cents`
          : "point at a bar for its step; click it for the details"
      }</span>
      <span>${Math.round(span)} ms</span>
    </div>
    <svg
      class="timeline"
      data-steps=${steps.length}
      viewBox=${`0 0 ${WIDTH} ${height}`}
      preserveAspectRatio="none"
      width="100%"
      height=${height}
      role="img"
      aria-label=${summary}
      onClick=${pick}
      onMouseMove=${(e: MouseEvent) => setHover(indexAt(e))}
      onMouseLeave=${() => setHover(null)}
    >
      ${[...paths].map(([status, d]) => html`<path class=${`bars status-${status}`} d=${d.join("")} />`)}
      ${mark(bad, "bar bad")} ${mark(selected, "bar selected")}
    </svg>
  </div>`;
}

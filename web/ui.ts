// Small shared pieces of the explorer: formatting, status badges, error boxes, the hash router.
import { html } from "htm/preact";
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, type GqlErrorInfo } from "./api.ts";
import { RUN_STATUSES } from "../src/lib/run-statuses.ts";

export { html };

export { RUN_STATUSES };
export const FINAL = new Set(["succeeded", "failed", "halted", "cancelled"]);

/** The hash route: #/runs, #/runs/<id>, #/agents, #/skills, #/enqueue, #/verify. */
export function useRoute(): string[] {
  const parse = () =>
    (location.hash.replace(/^#\/?/, "") || "runs")
      .split("/")
      .filter(Boolean)
      .map((p) => decodeURIComponent(p));
  const [route, setRoute] = useState(parse);
  useEffect(() => {
    const on = () => setRoute(parse());
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return route;
}

export const go = (path: string) => {
  location.hash = `#/${path}`;
};

export function age(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "–";
  const s = Math.max(0, (now - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "–";
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function between(from: string | null | undefined, to: string | null | undefined): number | null {
  if (!from) return null;
  return (to ? Date.parse(to) : Date.now()) - Date.parse(from);
}

export const short = (h: string | null | undefined, n = 12) => (h ? `${h.slice(0, n)}…` : "–");

export function StatusBadge({ status }: { status: string | null | undefined }) {
  return html`<span class=${`badge status-${status ?? "unknown"}`}>${status ?? "–"}</span>`;
}

/** A verification status: VERIFIED, IN_PROGRESS, TAMPERED, BROKEN, NOT_FOUND, INVALID_BUNDLE. */
export function VerdictBadge({ verdict }: { verdict: string | null | undefined }) {
  return html`<span class=${`badge verdict verdict-${(verdict ?? "unknown").toLowerCase()}`}
    >${verdict ?? "…"}</span
  >`;
}

export function GuardBadge({ guard }: { guard: string | null | undefined }) {
  if (!guard) return null;
  return html`<span class=${`badge guard guard-${guard.toLowerCase()}`} title="guard status (DDL audit)"
    >${guard}</span
  >`;
}

/** A run's place in its tenant's signed log: what Run.proof says of its leaf and the latest checkpoint. */
export interface LogPlace {
  leafIndex: string | number | null;
  checkpointSize: string | number | null;
}

/** Is the run's leaf in the latest checkpoint (leafIndex < checkpointSize)? null: the tenant has no checkpoint. */
export function checkpointed(p: LogPlace | null | undefined): boolean | null {
  if (!p || p.checkpointSize === null || p.checkpointSize === undefined) return null;
  return p.leafIndex !== null && p.leafIndex !== undefined && BigInt(p.leafIndex) < BigInt(p.checkpointSize);
}

/** "checkpointed" or "not checkpointed", shown only when the tenant's log has checkpoints. */
export function CheckpointBadge({ place }: { place: LogPlace | null | undefined }) {
  const c = checkpointed(place);
  if (c === null) return null;
  return html`<span
    class=${`badge checkpoint checkpoint-${c ? "yes" : "no"}`}
    data-testid="checkpoint-badge"
    title="is the run in its tenant's latest signed checkpoint?"
    >${c ? "checkpointed" : "not checkpointed"}</span
  >`;
}

export function ErrorBox({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  const errors: GqlErrorInfo[] =
    error instanceof ApiError
      ? error.errors
      : [
          {
            message: String((error as Error).message ?? error),
            code: null,
            hint: null,
            detail: null,
            path: null,
          },
        ];
  return html`<div class="error" role="alert">
    ${title ? html`<strong>${title}</strong>` : null}
    <ul>
      ${errors.map(
        (e) => html`<li>
          ${e.code ? html`<code class="errcode">${e.code}</code> ` : null}<span class="errmsg">${e.message}</span>
          ${e.hint ? html`<div class="hint">Hint: ${e.hint}</div>` : null}
          ${e.detail ? html`<div class="hint">Detail: ${e.detail}</div>` : null}
        </li>`,
      )}
    </ul>
  </div>`;
}

export function Section({
  title,
  children,
  id,
}: {
  title: string;
  children: ComponentChildren;
  id?: string;
}) {
  const hid = id ?? `h-${title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return html`<section aria-labelledby=${hid}>
    <h2 id=${hid}>${title}</h2>
    ${children}
  </section>`;
}

/** Pretty-prints a JSON value (or text that is JSON) for display. */
export function pretty(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "string") {
    try {
      return JSON.stringify(JSON.parse(v), null, 2);
    } catch {
      return v;
    }
  }
  return JSON.stringify(v, null, 2);
}

// One run: its facts, plan, attempts, step timeline, each step's redacted input/output/error and
// policy decision, incidents, erasures, live progress (runUpdated), cancel, and the proof panel
// (the database's verdict, roots, the chain with the first bad step highlighted, "Download bundle").
// Steps are fetched in pages of 100, ten pages per request (aliases), so a 1,000-step trace is one
// request.
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import type { Api } from "./api.ts";
import { type TimelineStep, Timeline } from "./timeline.ts";
import {
  between,
  duration,
  ErrorBox,
  FINAL,
  CheckpointBadge,
  checkpointed,
  GuardBadge,
  html,
  pretty,
  Section,
  StatusBadge,
  short,
  VerdictBadge,
} from "./ui.ts";

const PAGE = 100;
const PAGES_PER_REQUEST = 10;
const TABLE_PAGE = 50;

interface TraceRow {
  id: string;
  attempt: number;
  status: string;
  startedAt: string;
  completedAt: string | null;
  rootHash: string | null;
  archivedAt: string | null;
  steps: { totalCount: number };
}

interface RunDetail {
  id: string;
  goal: string;
  status: string;
  originSystemId: string;
  createdAt: string;
  plannedAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
  attempts: number;
  maxAttempts: number;
  nextPlanStep: number;
  planStepCount: number | null;
  costCents: string;
  plan: unknown;
  isFinished: boolean;
  idempotencyKey: string | null;
  rootHash: string | null;
  agent: { id: string; name: string } | null;
  traces: { nodes: TraceRow[] };
  incidents: {
    totalCount: number;
    nodes: Array<{
      id: string;
      createdAt: string;
      kind: string;
      severity: string;
      message: string;
      traceId: string | null;
    }>;
  };
  payloadErasures: {
    nodes: Array<{ id: string; erasedAt: string; erasedBy: string; reason: string; stepCount: number }>;
  };
}

interface Proof {
  integrityModel: string | null;
  proofFormat: number | null;
  verificationStatus: string | null;
  chainLength: number | null;
  traceCount: number | null;
  stepCount: number | null;
  erasedSteps: number | null;
  rootHash: string | null;
  firstBadAttempt: number | null;
  firstBadTraceId: string | null;
  firstBadStepIndex: number | null;
  reason: string | null;
  guardStatus: string | null;
  guardDetail: string | null;
  verifiedAt: string | null;
  leafIndex: string | null;
  checkpointSize: string | null;
  inclusionProof: string[] | null;
  checkpoint: string | null;
}

interface Step extends TimelineStep {
  prevHash: string | null;
  stepHash: string | null;
}

const RUN_QUERY = `query Run($id: UUID!) {
  run(id: $id) {
    id goal status originSystemId createdAt plannedAt startedAt finishedAt error attempts maxAttempts
    nextPlanStep planStepCount costCents plan isFinished idempotencyKey rootHash
    agent { id name }
    traces(first: 20) { nodes { id attempt status startedAt completedAt rootHash archivedAt steps { totalCount } } }
    incidents(first: 100) { totalCount nodes { id createdAt kind severity message traceId } }
    payloadErasures(first: 20) { nodes { id erasedAt erasedBy reason stepCount } }
  }
}`;
const PROOF_QUERY = `query RunProof($id: UUID!) {
  run(id: $id) {
    id
    proof {
      integrityModel proofFormat verificationStatus chainLength traceCount stepCount erasedSteps rootHash
      firstBadAttempt firstBadTraceId firstBadStepIndex reason guardStatus guardDetail verifiedAt
      leafIndex checkpointSize inclusionProof checkpoint
    }
  }
}`;
const STEP_FIELDS = `stepIndex planStep skill status policyDecision startedAt finishedAt durationMs costCents prevHash stepHash`;
const stepsQuery = (offsets: number[]) => `query Steps($trace: UUID!) {
  trace(id: $trace) {
    ${pagesOf(offsets)}
  }
}`;
const STEP_DETAIL = `query StepDetail($trace: UUID!, $index: Int!) {
  trace(id: $trace) {
    steps(condition: { stepIndex: $index }, first: 1) {
      nodes {
        stepIndex planStep skill status level source recordedAt durationMs costCents input output error prevHash stepHash
        decision { decision rule reason budgetCents spentCents decidedAt }
        erasure { id erasedAt erasedBy reason }
      }
    }
  }
}`;
const pagesOf = (offsets: number[]) =>
  offsets
    .map((o, i) => `p${i}: steps(first: ${PAGE}, offset: ${o}) { nodes { ${STEP_FIELDS} } }`)
    .join("\n    ");
/** The run with the first 1,000 steps of its last attempt: one request for the first view. */
const RUN_WITH_STEPS_QUERY = RUN_QUERY.replace(
  "    incidents(",
  `    lastTrace: traces(last: 1) { nodes { id attempt ${pagesOf(
    Array.from({ length: PAGES_PER_REQUEST }, (_, i) => i * PAGE),
  )} } }\n    incidents(`,
);
const BUNDLE_QUERY = `query RunBundle($id: UUID!) { run(id: $id) { id bundle } }`;
const CANCEL = `mutation Cancel($id: UUID!) { cancelRun(input: { runId: $id, reason: "cancelled from the web explorer" }) { run { id status } } }`;
const FOLLOW = `subscription Follow($id: UUID!) { runUpdated(runId: $id) { event status nextPlanStep stepIndex stepStatus } }`;

/** Every step of a trace from offset `from` on, ten pages of 100 per request. */
async function fetchSteps(api: Api, trace: TraceRow, from: number): Promise<Step[]> {
  const out: Step[] = [];
  const total = trace.steps.totalCount;
  for (let start = from; start < total; start += PAGE * PAGES_PER_REQUEST) {
    const offsets: number[] = [];
    for (let o = start; o < Math.min(total, start + PAGE * PAGES_PER_REQUEST); o += PAGE) offsets.push(o);
    const d = await api.request<{
      trace: Record<string, { nodes: Omit<Step, "traceId" | "attempt">[] }> | null;
    }>(stepsQuery(offsets), { trace: trace.id });
    if (!d.trace) break;
    for (let i = 0; i < offsets.length; i++)
      for (const s of d.trace[`p${i}`]?.nodes ?? [])
        out.push({ ...s, traceId: trace.id, attempt: trace.attempt });
  }
  return out;
}

export function RunPage({ api, runId }: { api: Api; runId: string }) {
  const [run, setRun] = useState<RunDetail | null | undefined>(undefined);
  const [steps, setSteps] = useState<Record<string, Step[]>>({});
  const [proof, setProof] = useState<Proof | null>(null);
  const [proofError, setProofError] = useState<unknown>(null);
  const [error, setError] = useState<unknown>(null);
  const [attempt, setAttempt] = useState<number | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [tablePage, setTablePage] = useState(0);
  const [live, setLive] = useState<string | null>(null);
  const [actionError, setActionError] = useState<unknown>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const stepsRef = useRef(steps);
  stepsRef.current = steps;

  const loadProof = () =>
    api.request<{ run: { proof: Proof | null } | null }>(PROOF_QUERY, { id: runId }).then(
      (d) => {
        setProof(d.run?.proof ?? null);
        setProofError(null);
      },
      (e) => setProofError(e),
    );

  type PagedTrace = { id: string; attempt: number } & Record<
    string,
    { nodes: Omit<Step, "traceId" | "attempt">[] }
  >;
  const load = async (first = false): Promise<RunDetail | null> => {
    try {
      const d = await api.request<{ run: (RunDetail & { lastTrace?: { nodes: PagedTrace[] } }) | null }>(
        first ? RUN_WITH_STEPS_QUERY : RUN_QUERY,
        { id: runId },
      );
      setRun(d.run);
      setError(null);
      if (!d.run) return null;
      // Fetch what is new in each trace (everything the first time, less what came with the run).
      const known = { ...stepsRef.current };
      for (const t of d.run.lastTrace?.nodes ?? []) {
        const got: Step[] = [];
        for (let i = 0; i < PAGES_PER_REQUEST; i++)
          for (const s of t[`p${i}`]?.nodes ?? []) got.push({ ...s, traceId: t.id, attempt: t.attempt });
        known[t.id] = got;
      }
      const fresh = await Promise.all(
        d.run.traces.nodes.map(async (t) => {
          const have = known[t.id] ?? [];
          if (have.length >= t.steps.totalCount) return [t.id, have] as const;
          return [t.id, have.concat(await fetchSteps(api, t, have.length))] as const;
        }),
      );
      performance.mark("runproof:steps-fetched");
      setSteps(Object.fromEntries(fresh));
      return d.run;
    } catch (e) {
      setError(e);
      return null;
    }
  };

  useEffect(() => {
    let stop: (() => void) | null = null;
    let timer: ReturnType<typeof setTimeout> | null = null;
    let closed = false;
    // The proof after the run and its steps: both run in the database, the steps are shown first.
    void load(true).then((r) => {
      void loadProof();
      if (!r || r.isFinished || closed) return;
      setLive("following");
      stop = api.subscribe<{ runUpdated: { event: string; status: string | null } | null }>(
        FOLLOW,
        { id: runId },
        {
          next: ({ runUpdated: u }) => {
            if (!u) return;
            if (timer) clearTimeout(timer);
            timer = setTimeout(() => {
              timer = null;
              void load().then((now) => {
                if (now && (now.isFinished || FINAL.has(now.status))) void loadProof();
              });
            }, 150);
          },
          error: (e) => setLive(`live updates stopped: ${e.message}`),
          complete: () => {
            setLive(null);
            void load().then(() => loadProof());
          },
        },
      );
    });
    return () => {
      closed = true;
      if (timer) clearTimeout(timer);
      stop?.();
    };
  }, [api, runId]);

  const traces = run?.traces.nodes ?? [];
  const badKey =
    proof &&
    proof.verificationStatus !== "VERIFIED" &&
    proof.firstBadTraceId &&
    proof.firstBadStepIndex !== null
      ? `${proof.firstBadTraceId}:${proof.firstBadStepIndex}`
      : null;
  const shownAttempt =
    attempt ??
    (proof?.firstBadAttempt && proof.verificationStatus !== "VERIFIED" ? proof.firstBadAttempt : null) ??
    traces[traces.length - 1]?.attempt ??
    null;
  const trace = traces.find((t) => t.attempt === shownAttempt) ?? null;
  const traceSteps = trace ? (steps[trace.id] ?? []) : [];

  // When the proof names a bad step, show the table page that holds it.
  useEffect(() => {
    if (badKey && trace && badKey.startsWith(trace.id)) {
      const idx = traceSteps.findIndex((s) => `${s.traceId}:${s.stepIndex}` === badKey);
      if (idx >= 0) setTablePage(Math.floor(idx / TABLE_PAGE));
    }
  }, [badKey, trace?.id, traceSteps.length]);

  useLayoutEffect(() => {
    if (traceSteps.length && trace && traceSteps.length === trace.steps.totalCount)
      requestAnimationFrame(() => performance.mark("runproof:timeline-painted"));
  }, [traceSteps.length, trace?.id]);

  if (run === undefined && !error) return html`<main id="main" tabindex="-1"><p>Loading run…</p></main>`;
  if (error && !run)
    return html`<main id="main" tabindex="-1">
      <h1>Run</h1>
      <${ErrorBox} error=${error} title="The run could not be loaded" />
    </main>`;
  if (!run)
    return html`<main id="main" tabindex="-1">
      <h1>Run not found</h1>
      <p class="not-found" role="alert">
        Run <code>${runId}</code> not found: it does not exist, or it belongs to another tenant.
      </p>
      <p><a href="#/runs">Back to the runs</a></p>
    </main>`;

  const cancel = async () => {
    setBusy("cancel");
    setActionError(null);
    try {
      await api.request(CANCEL, { id: runId });
      await load();
    } catch (e) {
      setActionError(e);
    } finally {
      setBusy(null);
    }
  };
  const download = async () => {
    setBusy("bundle");
    setActionError(null);
    try {
      const d = await api.request<{ run: { bundle: unknown } | null }>(BUNDLE_QUERY, { id: runId });
      const blob = new Blob([`${JSON.stringify(d.run?.bundle ?? null, null, 2)}\n`], {
        type: "application/json",
      });
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = `runproof-bundle-${runId}.json`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
    } catch (e) {
      setActionError(e);
    } finally {
      setBusy(null);
    }
  };

  return html`<main id="main" tabindex="-1" class="run" data-run-id=${run.id}>
    <p class="crumbs"><a href="#/runs">Runs</a> / <code>${run.id}</code></p>
    <h1>${run.goal || "Run"}</h1>
    <div class="actions">
      ${
        !run.isFinished
          ? html`<button type="button" class="danger" disabled=${busy !== null} onClick=${cancel}>
              ${busy === "cancel" ? "Cancelling…" : "Cancel run"}
            </button>`
          : null
      }
      <button type="button" disabled=${busy !== null} onClick=${download}>
        ${busy === "bundle" ? "Exporting…" : "Download bundle"}
      </button>
      ${live ? html`<span class="live" role="status">● ${live}</span>` : null}
    </div>
    <${ErrorBox} error=${actionError} />
    <dl class="facts">
      <dt>Status</dt>
      <dd><${StatusBadge} status=${run.status} />${run.error ? html` <span class="run-error">${run.error}</span>` : null}</dd>
      <dt>Progress</dt>
      <dd data-testid="progress">${run.nextPlanStep} of ${run.planStepCount ?? "?"} plan steps</dd>
      <dt>Agent</dt>
      <dd>${run.agent?.name ?? "–"}</dd>
      <dt>Origin</dt>
      <dd>${run.originSystemId}</dd>
      <dt>Created</dt>
      <dd><time datetime=${run.createdAt}>${new Date(run.createdAt).toLocaleString()}</time></dd>
      <dt>Duration</dt>
      <dd>${run.startedAt ? duration(between(run.startedAt, run.finishedAt)) : "not started"}</dd>
      <dt>Attempts</dt>
      <dd>${run.attempts} of at most ${run.maxAttempts}</dd>
      <dt>Cost</dt>
      <dd>${run.costCents} cents</dd>
      ${run.idempotencyKey ? html`<dt>Idempotency key</dt><dd>${run.idempotencyKey}</dd>` : null}
    </dl>

    <${ProofPanel} proof=${proof} error=${proofError} run=${run} onRecheck=${loadProof} />

    <${Section} title="Step timeline">
      ${
        traces.length > 1
          ? html`<div class="attempts-picker" role="group" aria-label="Attempt">
              ${traces.map(
                (t) => html`<button
                  type="button"
                  class=${t.attempt === shownAttempt ? "on" : "secondary"}
                  aria-pressed=${t.attempt === shownAttempt}
                  onClick=${() => {
                    setAttempt(t.attempt);
                    setTablePage(0);
                  }}
                >
                  Attempt ${t.attempt} (${t.status})
                </button>`,
              )}
            </div>`
          : null
      }
      ${
        trace
          ? html`<p class="note">
                Attempt ${trace.attempt}: ${trace.status}, ${trace.steps.totalCount} steps. Colours: succeeded, failed,
                denied; the first bad step is outlined in red.
              </p>
              <${Timeline} steps=${traceSteps} selected=${selected} bad=${badKey} onSelect=${setSelected} />
              <${StepTable}
                steps=${traceSteps}
                page=${tablePage}
                setPage=${setTablePage}
                bad=${badKey}
                selected=${selected}
                onSelect=${setSelected}
              />`
          : html`<p class="note">No attempt has started yet.</p>`
      }
      ${selected ? html`<${StepDetail} api=${api} stepKey=${selected} onClose=${() => setSelected(null)} />` : null}
    <//>

    <${Section} title="Plan">
      ${
        run.plan
          ? html`<pre class="json" tabindex="0" aria-label="The plan">${pretty(run.plan)}</pre>`
          : html`<p class="note">Not planned yet.</p>`
      }
    <//>

    <${Section} title="Attempts">
      <table>
        <thead>
          <tr><th scope="col">Attempt</th><th scope="col">Status</th><th scope="col">Steps</th><th scope="col">Started</th><th scope="col">Duration</th><th scope="col">Root hash</th></tr>
        </thead>
        <tbody>
          ${traces.map(
            (t) => html`<tr>
              <td>${t.attempt}</td>
              <td>${t.status}${t.archivedAt ? " (archived)" : ""}</td>
              <td>${t.steps.totalCount}</td>
              <td><time datetime=${t.startedAt}>${new Date(t.startedAt).toLocaleTimeString()}</time></td>
              <td>${duration(between(t.startedAt, t.completedAt))}</td>
              <td><code title=${t.rootHash ?? ""}>${short(t.rootHash, 16)}</code></td>
            </tr>`,
          )}
        </tbody>
      </table>
    <//>

    <${Section} title="Incidents">
      ${
        run.incidents.nodes.length
          ? html`<ul class="incidents">
              ${run.incidents.nodes.map(
                (i) => html`<li class=${`sev-${i.severity}`}>
                  <strong>${i.kind}</strong> (${i.severity}) <time datetime=${i.createdAt}>${new Date(i.createdAt).toLocaleTimeString()}</time>: ${i.message}
                </li>`,
              )}
            </ul>`
          : html`<p class="note">None.</p>`
      }
    <//>

    ${
      run.payloadErasures.nodes.length
        ? html`<${Section} title="Erased payloads">
            <ul>
              ${run.payloadErasures.nodes.map(
                (e) => html`<li>
                  ${e.stepCount} step(s) erased <time datetime=${e.erasedAt}>${new Date(e.erasedAt).toLocaleString()}</time> by
                  ${e.erasedBy}: ${e.reason}
                </li>`,
              )}
            </ul>
            <p class="note">Erased payloads keep their commitments: the proof still verifies, and counts them.</p>
          <//>`
        : null
    }
  </main>`;
}

function ProofPanel({
  proof,
  error,
  run,
  onRecheck,
}: {
  proof: Proof | null;
  error: unknown;
  run: RunDetail;
  onRecheck: () => void;
}) {
  return html`<section class=${`proof-panel verdict-box-${(proof?.verificationStatus ?? "pending").toLowerCase()}`} aria-labelledby="h-proof">
    <h2 id="h-proof">Proof</h2>
    <${ErrorBox} error=${error} title="The proof could not be computed" />
    ${
      proof
        ? html`<p class="verdict-line">
              <${VerdictBadge} verdict=${proof.verificationStatus} />
              <${GuardBadge} guard=${proof.guardStatus} />
              <${CheckpointBadge} place=${proof} />
              <span class="note">recomputed by the database ${proof.verifiedAt ? new Date(proof.verifiedAt).toLocaleTimeString() : ""}</span>
              <button type="button" class="secondary" onClick=${onRecheck}>Verify again</button>
            </p>
            ${
              proof.verificationStatus !== "VERIFIED" && proof.reason
                ? html`<p class="reason" data-testid="proof-reason">
                    ${
                      proof.firstBadStepIndex !== null
                        ? html`<strong data-testid="first-bad">First bad step: attempt ${proof.firstBadAttempt}, step ${proof.firstBadStepIndex}.</strong> `
                        : proof.firstBadAttempt !== null
                          ? html`<strong data-testid="first-bad">First bad attempt: ${proof.firstBadAttempt}.</strong> `
                          : null
                    }${proof.reason}
                  </p>`
                : null
            }
            <dl class="facts">
              <dt>Integrity model</dt><dd>${proof.integrityModel} (format ${proof.proofFormat})</dd>
              <dt>Chain</dt><dd>${proof.chainLength} links, ${proof.traceCount} trace(s), ${proof.stepCount} step(s)</dd>
              <dt>Erased steps</dt><dd>${proof.erasedSteps ?? 0}</dd>
              <dt>Run root</dt><dd><code class="hash">${proof.rootHash ?? run.rootHash ?? "– (the run is not sealed yet)"}</code></dd>
              ${proof.guardDetail ? html`<dt>Guard detail</dt><dd>${proof.guardDetail}</dd>` : null}
            </dl>
            <${LogInclusion} proof=${proof} />`
        : error
          ? null
          : html`<p>Verifying…</p>`
    }
  </section>`;
}

function StepTable({
  steps,
  page,
  setPage,
  bad,
  selected,
  onSelect,
}: {
  steps: Step[];
  page: number;
  setPage: (n: number) => void;
  bad: string | null;
  selected: string | null;
  onSelect: (k: string) => void;
}) {
  const pages = Math.max(1, Math.ceil(steps.length / TABLE_PAGE));
  const p = Math.min(page, pages - 1);
  const rows = useMemo(() => steps.slice(p * TABLE_PAGE, (p + 1) * TABLE_PAGE), [steps, p]);
  return html`<div class="steps">
    <table class="step-table">
      <caption>
        The chain: steps ${p * TABLE_PAGE}–${Math.min(steps.length, (p + 1) * TABLE_PAGE) - 1} of ${steps.length}; each
        step's prev_hash is the step_hash before it
      </caption>
      <thead>
        <tr>
          <th scope="col">Step</th><th scope="col">Plan step</th><th scope="col">Skill</th><th scope="col">Status</th>
          <th scope="col">Policy</th><th scope="col">Duration</th><th scope="col">Cost (cents)</th>
          <th scope="col">prev_hash</th><th scope="col">step_hash</th><th scope="col"><span class="sr-only">Details</span></th>
        </tr>
      </thead>
      <tbody>
        ${rows.map((s) => {
          const key = `${s.traceId}:${s.stepIndex}`;
          return html`<tr
            data-step=${s.stepIndex}
            class=${`${key === bad ? "bad" : ""}${key === selected ? " selected" : ""}`}
          >
            <th scope="row">${s.stepIndex}${key === bad ? html` <span class="badge verdict verdict-tampered">first bad</span>` : null}</th>
            <td>${s.planStep}</td>
            <td>${s.skill}</td>
            <td><${StatusBadge} status=${s.status} /></td>
            <td>${s.policyDecision}</td>
            <td>${duration(Number(s.durationMs))}</td>
            <td>${s.costCents}</td>
            <td><code title=${s.prevHash ?? ""}>${short(s.prevHash, 10)}</code></td>
            <td><code title=${s.stepHash ?? ""}>${short(s.stepHash, 10)}</code></td>
            <td><button type="button" class="link" onClick=${() => onSelect(key)} aria-label=${`Details of step ${s.stepIndex}`}>Details</button></td>
          </tr>`;
        })}
      </tbody>
    </table>
    ${
      pages > 1
        ? html`<nav class="pager" aria-label="Pages of steps">
            <button type="button" disabled=${p === 0} onClick=${() => setPage(p - 1)}>Previous steps</button>
            <span>page ${p + 1} of ${pages}</span>
            <button type="button" disabled=${p >= pages - 1} onClick=${() => setPage(p + 1)}>Next steps</button>
          </nav>`
        : null
    }
  </div>`;
}

interface StepDetailRow {
  stepIndex: number;
  planStep: number;
  skill: string;
  status: string;
  level: string;
  source: string;
  recordedAt: string;
  durationMs: string;
  costCents: string;
  input: unknown;
  output: unknown;
  error: string | null;
  prevHash: string | null;
  stepHash: string | null;
  decision: {
    decision: string;
    rule: string;
    reason: string;
    budgetCents: string | null;
    spentCents: string | null;
    decidedAt: string;
  } | null;
  erasure: { id: string; erasedAt: string; erasedBy: string; reason: string } | null;
}

function StepDetail({ api, stepKey, onClose }: { api: Api; stepKey: string; onClose: () => void }) {
  const [traceId, index] = stepKey.split(":");
  const [step, setStep] = useState<StepDetailRow | null>(null);
  const [error, setError] = useState<unknown>(null);
  const ref = useRef<HTMLElement>(null);
  useEffect(() => {
    setStep(null);
    api
      .request<{ trace: { steps: { nodes: StepDetailRow[] } } | null }>(STEP_DETAIL, {
        trace: traceId,
        index: Number(index),
      })
      .then(
        (d) => setStep(d.trace?.steps.nodes[0] ?? null),
        (e) => setError(e),
      );
    ref.current?.focus();
  }, [stepKey]);
  return html`<section class="step-detail" aria-labelledby="h-step" tabindex="-1" ref=${ref}>
    <h3 id="h-step">Step ${index}</h3>
    <button type="button" class="secondary close" onClick=${onClose}>Close</button>
    <${ErrorBox} error=${error} />
    ${
      step
        ? html`<dl class="facts">
              <dt>Skill</dt><dd>${step.skill} (plan step ${step.planStep})</dd>
              <dt>Status</dt><dd><${StatusBadge} status=${step.status} /> ${step.level}</dd>
              <dt>Policy decision</dt>
              <dd>${step.decision ? `${step.decision.decision} by rule ${step.decision.rule}: ${step.decision.reason}${step.decision.budgetCents !== null ? ` (spent ${step.decision.spentCents} of ${step.decision.budgetCents} cents)` : ""}` : "–"}</dd>
              <dt>Duration</dt><dd>${duration(Number(step.durationMs))}</dd>
              <dt>Cost</dt><dd>${step.costCents} cents</dd>
              <dt>Source</dt><dd>${step.source}</dd>
              <dt>prev_hash</dt><dd><code class="hash">${step.prevHash}</code></dd>
              <dt>step_hash</dt><dd><code class="hash">${step.stepHash}</code></dd>
            </dl>
            ${
              step.erasure
                ? html`<p class="note">
                    Payloads erased <time datetime=${step.erasure.erasedAt}>${new Date(step.erasure.erasedAt).toLocaleString()}</time> by
                    ${step.erasure.erasedBy}: ${step.erasure.reason}. Their commitments remain in the chain.
                  </p>`
                : html`<h4>Input (redacted)</h4>
                    <pre class="json" tabindex="0" aria-label="Input">${pretty(step.input)}</pre>
                    <h4>Output (redacted)</h4>
                    <pre class="json" tabindex="0" aria-label="Output">${pretty(step.output)}</pre>
                    ${step.error ? html`<h4>Error</h4><pre class="json error-text" tabindex="0" aria-label="Error">${step.error}</pre>` : null}`
            }`
        : error
          ? null
          : html`<p>Loading…</p>`
    }
  </section>`;
}

/** The run's leaf in its tenant's signed log (docs/proof-format.md section 13): the checkpoint that holds it. */
function LogInclusion({ proof }: { proof: Proof }) {
  const c = checkpointed(proof);
  return html`<div class="log-inclusion" data-testid="log-inclusion" data-checkpointed=${String(c === true)}>
    <h3>Checkpoint inclusion</h3>
    ${
      c
        ? html`<dl class="facts">
            <dt>Leaf index</dt><dd data-testid="leaf-index">${proof.leafIndex}</dd>
            <dt>Checkpoint size</dt><dd data-testid="checkpoint-size">${proof.checkpointSize}</dd>
            <dt>Inclusion proof</dt><dd data-testid="inclusion-length">${proof.inclusionProof?.length ?? 0} hash(es)</dd>
          </dl>
          <p class="note">The signed checkpoint (a C2SP signed note; check it with the operator's verifier key):</p>
          <pre class="note-text" data-testid="signed-note">${proof.checkpoint}</pre>`
        : html`<p data-testid="not-checkpointed">
            Not yet checkpointed${
              proof.leafIndex !== null
                ? html`: leaf ${proof.leafIndex} of the log, ${
                    proof.checkpointSize === null
                      ? "and the tenant has no checkpoint yet"
                      : `the latest checkpoint holds ${proof.checkpointSize} leaves`
                  }.`
                : " (the run is not sealed into its tenant's log yet)."
            }
          </p>`
    }
  </div>`;
}

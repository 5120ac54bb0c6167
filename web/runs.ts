// The runs list: filters by status, agent and creation time; keyset pagination (PostGraphile cursors
// over the (tenant_id, created_at desc, id desc) index); proof badges fetched after the rows, so a
// slow proof never holds the list back; live status through runUpdated for the unfinished rows.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { Api } from "./api.ts";
import {
  age,
  between,
  duration,
  ErrorBox,
  FINAL,
  CheckpointBadge,
  GuardBadge,
  html,
  RUN_STATUSES,
  StatusBadge,
  VerdictBadge,
} from "./ui.ts";

const PAGE = 25;

export interface RunRow {
  id: string;
  goal: string;
  status: string;
  originSystemId: string;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  nextPlanStep: number;
  planStepCount: number | null;
  agent: { id: string; name: string } | null;
}

interface RunsPage {
  runs: {
    pageInfo: {
      hasNextPage: boolean;
      hasPreviousPage: boolean;
      startCursor: string | null;
      endCursor: string | null;
    };
    nodes: RunRow[];
  };
}

const ARGS = `$first: Int, $last: Int, $after: Cursor, $before: Cursor, $condition: RunCondition`;
const CALL = `runs(first: $first, last: $last, after: $after, before: $before, condition: $condition, orderBy: [CREATED_AT_DESC])`;
const RUNS_QUERY = `query Runs(${ARGS}) {
  ${CALL} {
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    nodes { id goal status originSystemId createdAt startedAt finishedAt nextPlanStep planStepCount agent { id name } }
  }
}`;
// Counting a tenant's million runs takes about half a second: asked apart, it never holds the page back.
const COUNT_QUERY = `query RunCount($condition: RunCondition) { runs(first: 0, condition: $condition) { totalCount } }`;
const BADGES_QUERY = `query RunBadges(${ARGS}) {
  ${CALL} { nodes { id proof { verificationStatus guardStatus leafIndex checkpointSize } } }
}`;
const AGENTS_QUERY = `query AgentNames { agents(first: 100) { nodes { id name } } }`;
const ROW_QUERY = `query RunRow($id: UUID!) { run(id: $id) { id status startedAt finishedAt nextPlanStep proof { verificationStatus guardStatus leafIndex checkpointSize } } }`;
const FOLLOW = `subscription FollowRow($id: UUID!) { runUpdated(runId: $id) { event status nextPlanStep } }`;

interface Filters {
  status: string;
  agentId: string;
  from: string;
  before: string;
}

/** datetime-local value (local time) to an ISO instant, or null. */
const instant = (local: string) => (local ? new Date(local).toISOString() : null);

export function RunsPage({ api }: { api: Api }) {
  const [filters, setFilters] = useState<Filters>({ status: "", agentId: "", from: "", before: "" });
  const [cursor, setCursor] = useState<{ after?: string; before?: string }>({});
  const [page, setPage] = useState<RunsPage["runs"] | null>(null);
  const [badges, setBadges] = useState<
    Record<
      string,
      {
        verificationStatus: string;
        guardStatus: string | null;
        leafIndex: string | null;
        checkpointSize: string | null;
      }
    >
  >({});
  const [agents, setAgents] = useState<Array<{ id: string; name: string }>>([]);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [count, setCount] = useState<number | null>(null);
  const [reload, setReload] = useState(0);
  const [now, setNow] = useState(Date.now());

  useEffect(() => {
    api.request<{ agents: { nodes: Array<{ id: string; name: string }> } }>(AGENTS_QUERY).then(
      (d) => setAgents(d.agents.nodes),
      () => {},
    );
    const t = setInterval(() => setNow(Date.now()), 10_000);
    return () => clearInterval(t);
  }, [api]);

  const condition = useMemo(() => {
    const c: Record<string, unknown> = {};
    if (filters.status) c.status = filters.status;
    if (filters.agentId) c.agentId = filters.agentId;
    if (filters.from) c.createdFrom = instant(filters.from);
    if (filters.before) c.createdBefore = instant(filters.before);
    return c;
  }, [filters]);
  const variables = useMemo(
    () =>
      cursor.before
        ? { last: PAGE, before: cursor.before, condition }
        : { first: PAGE, after: cursor.after ?? null, condition },
    [condition, cursor],
  );

  useEffect(() => {
    let live = true;
    setCount(null);
    api.request<{ runs: { totalCount: number } }>(COUNT_QUERY, { condition }).then(
      (d) => live && setCount(d.runs.totalCount),
      () => {},
    );
    return () => {
      live = false;
    };
  }, [api, condition, reload]);

  useEffect(() => {
    let live = true;
    setLoading(true);
    api.request<RunsPage>(RUNS_QUERY, variables).then(
      (d) => {
        if (!live) return;
        setPage(d.runs);
        setError(null);
        setLoading(false);
        api
          .request<{ runs: { nodes: Array<{ id: string; proof: (typeof badges)[string] | null }> } }>(
            BADGES_QUERY,
            variables,
          )
          .then(
            (b) => {
              if (!live) return;
              const next: typeof badges = {};
              for (const n of b.runs.nodes) if (n.proof) next[n.id] = n.proof;
              setBadges((old) => ({ ...old, ...next }));
            },
            () => {},
          );
      },
      (e) => {
        if (!live) return;
        setError(e);
        setLoading(false);
      },
    );
    return () => {
      live = false;
    };
  }, [api, variables, reload]);

  // Live status: follow every unfinished run on the page.
  const unfinished = (page?.nodes ?? []).filter((r) => !FINAL.has(r.status)).map((r) => r.id);
  const following = useRef(new Map<string, () => void>());
  useEffect(() => {
    const subs = following.current;
    for (const [id, stop] of subs)
      if (!unfinished.includes(id)) {
        stop();
        subs.delete(id);
      }
    for (const id of unfinished) {
      if (subs.has(id)) continue;
      const refresh = () =>
        api
          .request<{ run: Partial<RunRow> & { id: string; proof: (typeof badges)[string] | null } }>(
            ROW_QUERY,
            { id },
          )
          .then(
            ({ run }) => {
              if (!run) return;
              const { proof, ...row } = run;
              setPage((p) =>
                p ? { ...p, nodes: p.nodes.map((r) => (r.id === id ? { ...r, ...row } : r)) } : p,
              );
              if (proof) setBadges((b) => ({ ...b, [id]: proof }));
            },
            () => {},
          );
      subs.set(
        id,
        api.subscribe<{
          runUpdated: { event: string; status: string | null; nextPlanStep: number | null } | null;
        }>(
          FOLLOW,
          { id },
          {
            next: ({ runUpdated: u }) => {
              if (!u) return;
              if (u.status || u.nextPlanStep !== null)
                setPage((p) =>
                  p
                    ? {
                        ...p,
                        nodes: p.nodes.map((r) =>
                          r.id === id
                            ? {
                                ...r,
                                status: u.status ?? r.status,
                                nextPlanStep: u.nextPlanStep ?? r.nextPlanStep,
                              }
                            : r,
                        ),
                      }
                    : p,
                );
              if (u.status && FINAL.has(u.status)) void refresh();
            },
            complete: () => void refresh(),
          },
        ),
      );
    }
  }, [api, unfinished.join(",")]);
  useEffect(
    () => () => {
      for (const stop of following.current.values()) stop();
      following.current.clear();
    },
    [],
  );

  const set = (k: keyof Filters) => (e: Event) => {
    setFilters({ ...filters, [k]: (e.target as HTMLInputElement).value });
    setCursor({});
  };

  return html`<main id="main" tabindex="-1">
    <h1>Runs</h1>
    <form class="filters" aria-label="Filter runs" onSubmit=${(e: Event) => e.preventDefault()}>
      <label
        >Status
        <select name="status" value=${filters.status} onChange=${set("status")}>
          <option value="">any</option>
          ${RUN_STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}
        </select>
      </label>
      <label
        >Agent
        <select name="agent" value=${filters.agentId} onChange=${set("agentId")}>
          <option value="">any</option>
          ${agents.map((a) => html`<option value=${a.id}>${a.name}</option>`)}
        </select>
      </label>
      <label>Created from <input type="datetime-local" name="from" value=${filters.from} onChange=${set("from")} /></label>
      <label
        >Created before <input type="datetime-local" name="before" value=${filters.before} onChange=${set("before")}
      /></label>
      <button type="button" class="secondary" onClick=${() => setReload(reload + 1)}>Refresh</button>
    </form>
    <${ErrorBox} error=${error} title="The runs could not be loaded" />
    ${
      page
        ? html`<p class="count" aria-live="polite">
              ${count === null ? "Counting runs…" : `${count} run${count === 1 ? "" : "s"}`}${loading ? " (loading…)" : ""}
            </p>
            <table class="runs">
              <caption class="sr-only">Runs, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">Goal</th>
                  <th scope="col">Status</th>
                  <th scope="col">Agent</th>
                  <th scope="col">Origin</th>
                  <th scope="col">Age</th>
                  <th scope="col">Duration</th>
                  <th scope="col">Proof</th>
                </tr>
              </thead>
              <tbody>
                ${page.nodes.map(
                  (r) => html`<tr data-run-id=${r.id}>
                    <td><a href=${`#/runs/${r.id}`}>${r.goal || r.id}</a></td>
                    <td>
                      <${StatusBadge} status=${r.status} />
                      ${
                        !FINAL.has(r.status) && r.planStepCount
                          ? html` <span class="progress">${r.nextPlanStep}/${r.planStepCount}</span>`
                          : null
                      }
                    </td>
                    <td>${r.agent?.name ?? "–"}</td>
                    <td>${r.originSystemId}</td>
                    <td><time datetime=${r.createdAt} title=${r.createdAt}>${age(r.createdAt, now)}</time></td>
                    <td>${r.startedAt ? duration(between(r.startedAt, r.finishedAt)) : "–"}</td>
                    <td class="proof-cell">
                      <${VerdictBadge} verdict=${badges[r.id]?.verificationStatus} />
                      <${GuardBadge} guard=${badges[r.id]?.guardStatus} />
                      <${CheckpointBadge} place=${badges[r.id]} />
                    </td>
                  </tr>`,
                )}
              </tbody>
            </table>
            ${page.nodes.length === 0 ? html`<p>No runs match.</p>` : null}
            <nav class="pager" aria-label="Pages of runs">
              <button
                type="button"
                disabled=${!(cursor.after || cursor.before) || (cursor.before && !page.pageInfo.hasPreviousPage)}
                onClick=${() => setCursor(page.pageInfo.startCursor ? { before: page.pageInfo.startCursor } : {})}
              >
                Newer
              </button>
              <button
                type="button"
                disabled=${cursor.before ? false : !page.pageInfo.hasNextPage}
                onClick=${() => setCursor(page.pageInfo.endCursor ? { after: page.pageInfo.endCursor } : {})}
              >
                Older
              </button>
            </nav>`
        : loading
          ? html`<p>Loading…</p>`
          : null
    }
  </main>`;
}

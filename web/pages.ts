// Agents, skills, and the form that enqueues a run through the enqueueRun mutation (every refusal
// shown with its code, message and hint, as the API gives them).
import { useEffect, useState } from "preact/hooks";
import type { Api } from "./api.ts";
import { ErrorBox, html, pretty } from "./ui.ts";

interface Agent {
  id: string;
  name: string;
  description: string;
  allowedSkills: string[] | null;
  createdAt: string;
  runs: { totalCount: number };
}

interface Skill {
  name: string;
  description: string;
  enabled: boolean;
  sideEffects: boolean;
  costCents: string;
  defaultTimeoutMs: number;
  inputSchema: unknown;
}

const AGENTS = `query Agents { agents(first: 100) { totalCount nodes { id name description allowedSkills createdAt runs(first: 1) { totalCount } } } }`;
const SKILLS = `query Skills { skills(first: 100) { nodes { name description enabled sideEffects costCents defaultTimeoutMs inputSchema } } }`;
const ENQUEUE = `mutation Enqueue($input: EnqueueRunInput!) { enqueueRun(input: $input) { run { id status } } }`;

function useQuery<T>(api: Api, query: string): { data: T | null; error: unknown } {
  const [state, setState] = useState<{ data: T | null; error: unknown }>({ data: null, error: null });
  useEffect(() => {
    api.request<T>(query).then(
      (data) => setState({ data, error: null }),
      (error) => setState({ data: null, error }),
    );
  }, [api, query]);
  return state;
}

export function AgentsPage({ api }: { api: Api }) {
  const { data, error } = useQuery<{ agents: { totalCount: number; nodes: Agent[] } }>(api, AGENTS);
  return html`<main id="main" tabindex="-1">
    <h1>Agents</h1>
    <${ErrorBox} error=${error} title="The agents could not be loaded" />
    ${
      data
        ? html`<table>
            <thead>
              <tr><th scope="col">Name</th><th scope="col">Description</th><th scope="col">Allowed skills</th><th scope="col">Runs</th><th scope="col">Created</th><th scope="col"><span class="sr-only">Actions</span></th></tr>
            </thead>
            <tbody>
              ${data.agents.nodes.map(
                (a) => html`<tr>
                  <td>${a.name}</td>
                  <td>${a.description || "–"}</td>
                  <td>${a.allowedSkills ? a.allowedSkills.join(", ") : "every registered skill"}</td>
                  <td>${a.runs.totalCount}</td>
                  <td><time datetime=${a.createdAt}>${new Date(a.createdAt).toLocaleDateString()}</time></td>
                  <td><a href=${`#/enqueue/${a.id}`}>Enqueue a run</a></td>
                </tr>`,
              )}
            </tbody>
          </table>
          ${data.agents.nodes.length === 0 ? html`<p>No agents yet: create one with <code>runproof agent create</code>.</p>` : null}`
        : error
          ? null
          : html`<p>Loading…</p>`
    }
  </main>`;
}

export function SkillsPage({ api }: { api: Api }) {
  const { data, error } = useQuery<{ skills: { nodes: Skill[] } }>(api, SKILLS);
  return html`<main id="main" tabindex="-1">
    <h1>Skills</h1>
    <p class="note">The skills a plan may name; the worker registers them.</p>
    <${ErrorBox} error=${error} title="The skills could not be loaded" />
    ${
      data
        ? html`<table>
            <thead>
              <tr><th scope="col">Name</th><th scope="col">Description</th><th scope="col">Enabled</th><th scope="col">Side effects</th><th scope="col">Cost (cents)</th><th scope="col">Timeout</th><th scope="col">Input schema</th></tr>
            </thead>
            <tbody>
              ${data.skills.nodes.map(
                (s) => html`<tr>
                  <td><code>${s.name}</code></td>
                  <td>${s.description}</td>
                  <td>${s.enabled ? "yes" : "no"}</td>
                  <td>${s.sideEffects ? "yes" : "no"}</td>
                  <td>${s.costCents}</td>
                  <td>${s.defaultTimeoutMs} ms</td>
                  <td>
                    <details>
                      <summary>schema</summary>
                      <pre class="json" tabindex="0" aria-label=${`Input schema of ${s.name}`}>${pretty(s.inputSchema)}</pre>
                    </details>
                  </td>
                </tr>`,
              )}
            </tbody>
          </table>`
        : error
          ? null
          : html`<p>Loading…</p>`
    }
  </main>`;
}

const EXAMPLE_PLAN = `{
  "version": 1,
  "steps": [
    { "skill": "noop", "input": { "note": "hello" } }
  ]
}`;

export function EnqueuePage({ api, agentId }: { api: Api; agentId?: string }) {
  const { data: agents } = useQuery<{ agents: { nodes: Agent[] } }>(api, AGENTS);
  const [form, setForm] = useState({
    agentId: agentId ?? "",
    goal: "",
    originSystemId: "web-explorer",
    plan: EXAMPLE_PLAN,
    maxAttempts: "3",
    idempotencyKey: "",
  });
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (!form.agentId && agents?.agents.nodes[0])
      setForm((f) => ({ ...f, agentId: agents.agents.nodes[0]!.id }));
  }, [agents]);

  const set = (k: keyof typeof form) => (e: Event) =>
    setForm({ ...form, [k]: (e.target as HTMLInputElement | HTMLTextAreaElement).value });

  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    let plan: unknown = null;
    if (form.plan.trim()) {
      try {
        plan = JSON.parse(form.plan);
      } catch (err) {
        setError(new Error(`The plan is not JSON: ${(err as Error).message}`));
        return;
      }
    }
    const input: Record<string, unknown> = {
      agentId: form.agentId || null,
      goal: form.goal,
      originSystemId: form.originSystemId,
      plan,
      maxAttempts: form.maxAttempts ? Number(form.maxAttempts) : null,
      idempotencyKey: form.idempotencyKey || null,
    };
    setBusy(true);
    try {
      const d = await api.request<{ enqueueRun: { run: { id: string } | null } | null }>(ENQUEUE, { input });
      const id = d.enqueueRun?.run?.id;
      if (id) location.hash = `#/runs/${id}`;
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return html`<main id="main" tabindex="-1">
    <h1>Enqueue a run</h1>
    <form class="enqueue" onSubmit=${submit}>
      <label for="f-agent">Agent</label>
      <select id="f-agent" value=${form.agentId} onChange=${set("agentId")}>
        <option value="">(none)</option>
        ${(agents?.agents.nodes ?? []).map((a) => html`<option value=${a.id}>${a.name}</option>`)}
      </select>
      <label for="f-goal">Goal</label>
      <input id="f-goal" value=${form.goal} onInput=${set("goal")} placeholder="what the run is for" />
      <label for="f-origin">Origin system</label>
      <input id="f-origin" value=${form.originSystemId} onInput=${set("originSystemId")} />
      <label for="f-plan">Plan (JSON; empty: the planner makes one from the goal)</label>
      <textarea id="f-plan" rows="8" spellcheck=${false} value=${form.plan} onInput=${set("plan")}></textarea>
      <label for="f-attempts">Max attempts</label>
      <input id="f-attempts" type="number" value=${form.maxAttempts} onInput=${set("maxAttempts")} />
      <label for="f-key">Idempotency key (optional)</label>
      <input id="f-key" value=${form.idempotencyKey} onInput=${set("idempotencyKey")} />
      <div><button type="submit" disabled=${busy}>${busy ? "Enqueueing…" : "Enqueue"}</button></div>
    </form>
    <${ErrorBox} error=${error} title="The run was refused" />
  </main>`;
}

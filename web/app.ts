// The RunProof web explorer: sign in with an API key, then runs, a run's timeline and proof, agents,
// skills, enqueueing a run, and verifying a bundle in the browser. Preact + htm, bundled by esbuild
// (src/explorer.ts); every byte of data comes from /graphql with the tab's API key.
import "./style.css";
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { Api, ApiError, storedKey } from "./api.ts";
import { AgentsPage, EnqueuePage, SkillsPage } from "./pages.ts";
import { RunPage } from "./run.ts";
import { RunsPage } from "./runs.ts";
import { ErrorBox, html, useRoute } from "./ui.ts";

// The verifier (src/lib/offline-verify.ts, with zod's bundle schema) is a chunk of its own, loaded
// when the Verify page is first shown, so the first load of the page stays small.
type VerifyPageType = typeof import("./verify.ts").VerifyPage;
let verifyModule: Promise<VerifyPageType> | undefined;
const loadVerifyPage = () => (verifyModule ??= import("./verify.ts").then((m) => m.VerifyPage));

function LazyVerifyPage({ file }: { file: File | null }) {
  const [Page, setPage] = useState<VerifyPageType | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    loadVerifyPage().then(
      (p) => setPage(() => p),
      (e) => setError(e),
    );
  }, []);
  if (Page) return html`<${Page} file=${file} />`;
  return html`<main id="main" tabindex="-1">
    <h1>Verify a bundle</h1>
    ${error ? html`<${ErrorBox} error=${error} title="The verifier could not be loaded" />` : html`<p>Loading the verifier…</p>`}
  </main>`;
}

interface Session {
  api: Api;
  tenant: { id: string; name: string };
}

const TENANT_QUERY = `query Tenant { currentTenant { id name } }`;

async function signIn(key: string): Promise<Session> {
  const api = new Api(key.trim());
  const data = await api.request<{ currentTenant: { id: string; name: string } | null }>(TENANT_QUERY);
  if (!data.currentTenant)
    throw new ApiError(
      [{ message: "this key has no tenant", code: null, hint: null, detail: null, path: null }],
      200,
    );
  api.remember();
  return { api, tenant: data.currentTenant };
}

function SignIn({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await signIn(key));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<main id="main" class="signin">
    <h1>RunProof explorer</h1>
    <p>Runs, their step timelines and their proofs. Sign in with an API key of your tenant.</p>
    <form onSubmit=${submit} aria-describedby="key-note">
      <label for="api-key">API key</label>
      <input
        id="api-key"
        name="api-key"
        type="password"
        autocomplete="off"
        spellcheck=${false}
        placeholder="rp_…"
        required
        value=${key}
        onInput=${(e: Event) => setKey((e.target as HTMLInputElement).value)}
      />
      <button type="submit" disabled=${busy}>${busy ? "Signing in…" : "Sign in"}</button>
    </form>
    <p id="key-note" class="note">
      The key is kept for this tab only (sessionStorage), never in the address bar or in localStorage, and is sent
      only to this server's /graphql. Create one with <code>runproof api-key create</code>.
    </p>
    <${ErrorBox} error=${error} title="Sign-in failed" />
    <p class="note"><a href="#/verify">Verify a bundle</a> without signing in: it is checked in this browser.</p>
  </main>`;
}

function Nav({
  session,
  onSignOut,
  route,
}: {
  session: Session | null;
  onSignOut: () => void;
  route: string[];
}) {
  const link = (path: string, label: string) =>
    html`<a href=${`#/${path}`} aria-current=${route[0] === path ? "page" : undefined}>${label}</a>`;
  return html`<header class="top">
    <a class="skip" href="#main" onClick=${(e: Event) => {
      e.preventDefault();
      document.getElementById("main")?.focus();
    }}>Skip to content</a>
    <span class="brand">RunProof</span>
    <nav aria-label="Main">
      ${session ? [link("runs", "Runs"), link("agents", "Agents"), link("skills", "Skills"), link("enqueue", "Enqueue a run")] : null}
      ${link("verify", "Verify a bundle")}
    </nav>
    ${
      session
        ? html`<span class="tenant">Tenant <strong data-testid="tenant-name">${session.tenant.name}</strong></span>
            <button type="button" class="secondary" onClick=${onSignOut}>Sign out</button>`
        : null
    }
  </header>`;
}

function App() {
  const route = useRoute();
  const [session, setSession] = useState<Session | null>(null);
  const [restoring, setRestoring] = useState(() => storedKey() !== null);
  const [dropped, setDropped] = useState<File | null>(null);

  useEffect(() => {
    const key = storedKey();
    if (!key) return;
    signIn(key)
      .then(setSession, () => new Api(key).signOut())
      .finally(() => setRestoring(false));
  }, []);

  // A bundle dropped anywhere on the page is verified (locally) on the Verify page.
  useEffect(() => {
    const over = (e: DragEvent) => {
      if (e.dataTransfer?.types.includes("Files")) e.preventDefault();
    };
    const drop = (e: DragEvent) => {
      const file = e.dataTransfer?.files[0];
      if (!file) return;
      e.preventDefault();
      setDropped(file);
      if (location.hash !== "#/verify") location.hash = "#/verify";
    };
    addEventListener("dragover", over);
    addEventListener("drop", drop);
    return () => {
      removeEventListener("dragover", over);
      removeEventListener("drop", drop);
    };
  }, []);

  const signOut = () => {
    session?.api.signOut();
    setSession(null);
    location.hash = "#/runs";
  };

  let page: unknown;
  if (route[0] === "verify") page = html`<${LazyVerifyPage} file=${dropped} />`;
  else if (restoring) page = html`<main id="main" tabindex="-1"><p>Signing in…</p></main>`;
  else if (!session) page = html`<${SignIn} onSignedIn=${setSession} />`;
  else {
    const api = session.api;
    const [first, second] = route;
    page =
      first === "runs" && second
        ? html`<${RunPage} key=${second} api=${api} runId=${second} />`
        : first === "agents"
          ? html`<${AgentsPage} api=${api} />`
          : first === "skills"
            ? html`<${SkillsPage} api=${api} />`
            : first === "enqueue"
              ? html`<${EnqueuePage} api=${api} agentId=${second} />`
              : html`<${RunsPage} api=${api} />`;
  }
  return html`<${Nav} session=${session} onSignOut=${signOut} route=${route} />${page}`;
}

render(html`<${App} />`, document.getElementById("app")!);

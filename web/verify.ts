// Verify a bundle in this browser: the file is read locally and checked by src/lib/offline-verify.ts,
// the very module `runproof proof verify` runs (one module, not a copy), with Web Crypto's SHA-256.
// Nothing is uploaded: the page's Content Security Policy allows connections to this server only,
// and this page makes none.
import { useEffect, useRef, useState } from "preact/hooks";
import { type Bundle, bundleSchema } from "../src/lib/bundle-format.ts";
import {
  type DecodedRun,
  decodeBundle,
  invalid,
  type OfflineProof,
  verifyBundle,
} from "../src/lib/offline-verify.ts";
import { html, StatusBadge, short, VerdictBadge } from "./ui.ts";

interface Result {
  file: string;
  bytes: number;
  ms: number;
  proof: OfflineProof;
  decoded: DecodedRun | null;
  databaseSaid: string | null;
  log: Bundle["log"] | null;
}

/** Reads and verifies one bundle file, locally. */
export async function verifyFile(file: File): Promise<Result> {
  const t0 = performance.now();
  const text = await file.text();
  let proof: OfflineProof;
  let decoded: DecodedRun | null = null;
  let databaseSaid: string | null = null;
  let log: Bundle["log"] | null = null;
  if (!globalThis.crypto?.subtle) {
    proof = invalid(
      "this browser offers no Web Crypto here (it needs a secure context: https, or http on localhost/127.0.0.1)",
    );
  } else {
    try {
      const raw = JSON.parse(text);
      proof = await verifyBundle(raw);
      const parsed = bundleSchema.safeParse(raw);
      if (parsed.success) {
        decoded = decodeBundle(parsed.data);
        const said = parsed.data.database_proof?.verification_status;
        databaseSaid = typeof said === "string" ? said : null;
        log = parsed.data.log ?? null;
      }
    } catch (e) {
      proof = invalid(`the file is not JSON: ${(e as Error).message}`);
    }
  }
  return { file: file.name, bytes: file.size, ms: performance.now() - t0, proof, decoded, databaseSaid, log };
}

export function VerifyPage({ file }: { file: File | null }) {
  const [result, setResult] = useState<Result | null>(null);
  const [busy, setBusy] = useState(false);
  const [over, setOver] = useState(false);
  const input = useRef<HTMLInputElement>(null);

  const check = async (f: File | null | undefined) => {
    if (!f) return;
    setBusy(true);
    setResult(null);
    try {
      setResult(await verifyFile(f));
    } finally {
      setBusy(false);
    }
  };
  useEffect(() => {
    void check(file);
  }, [file]);

  const p = result?.proof;
  return html`<main id="main" tabindex="-1">
    <h1>Verify a bundle</h1>
    <p>
      Drop a proof bundle (<code>runproof proof export RUN_ID -o bundle.json</code>, or "Download bundle" on a run) on
      this page. It is verified here, in your browser, by the same code as <code>runproof proof verify</code>: every
      hash is recomputed with Web Crypto. The file is not uploaded anywhere.
    </p>
    <div
      class=${`dropzone${over ? " over" : ""}`}
      data-testid="dropzone"
      onDragOver=${(e: DragEvent) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave=${() => setOver(false)}
      onDrop=${(e: DragEvent) => {
        e.preventDefault();
        e.stopPropagation();
        setOver(false);
        void check(e.dataTransfer?.files[0]);
      }}
    >
      <p>Drop a bundle file here, or</p>
      <label class="button" for="bundle-file">Choose a bundle file…</label>
      <input
        id="bundle-file"
        ref=${input}
        class="sr-only-input"
        type="file"
        accept=".json,application/json"
        onChange=${(e: Event) => void check((e.target as HTMLInputElement).files?.[0])}
      />
    </div>
    ${busy ? html`<p role="status">Verifying…</p>` : null}
    ${
      result && p
        ? html`<section
            class=${`proof-panel verdict-box-${p.verification_status.toLowerCase()}`}
            aria-labelledby="h-local"
            data-testid="local-verdict"
            data-verdict=${p.verification_status}
          >
            <h2 id="h-local">Verified locally: <${VerdictBadge} verdict=${p.verification_status} /></h2>
            <p class="note" role="status">
              ${result.file} (${result.bytes.toLocaleString()} bytes) checked in ${Math.round(result.ms)} ms in this browser.
            </p>
            ${
              p.verification_status !== "VERIFIED" && p.reason
                ? html`<p class="reason" data-testid="local-reason">
                    ${
                      p.first_bad_step_index !== null
                        ? html`<strong data-testid="local-first-bad">First bad step: attempt ${p.first_bad_attempt}, step ${p.first_bad_step_index}.</strong> `
                        : p.first_bad_attempt !== null
                          ? html`<strong data-testid="local-first-bad">First bad attempt: ${p.first_bad_attempt}.</strong> `
                          : null
                    }${p.reason}
                  </p>`
                : null
            }
            <dl class="facts">
              <dt>Run</dt><dd><code>${p.run_id ?? "–"}</code></dd>
              <dt>Tenant</dt><dd><code>${p.tenant_id ?? "–"}</code></dd>
              <dt>Chain</dt><dd>${p.chain_length} links, ${p.trace_count} trace(s), ${p.step_count} step(s), ${p.erased_steps} erased</dd>
              <dt>Run root</dt><dd><code class="hash">${p.root_hash ?? "–"}</code></dd>
              <dt>Guard status at export</dt><dd>${p.guard_status ?? "–"} (reported by the database, not covered by a hash)</dd>
              ${result.databaseSaid ? html`<dt>The database said at export</dt><dd>${result.databaseSaid}</dd>` : null}
            </dl>
            ${result.log ? html`<${LogView} log=${result.log} file=${result.file} />` : null}
            ${result.decoded ? html`<${DecodedView} run=${result.decoded} bad=${p} />` : null}
          </section>`
        : null
    }
  </main>`;
}

function DecodedView({ run, bad }: { run: DecodedRun; bad: OfflineProof }) {
  return html`<details>
    <summary>What the bundle says (decoded from its hashed texts)</summary>
    <dl class="facts">
      <dt>Goal</dt><dd>${run.goal}</dd>
      <dt>Status</dt><dd><${StatusBadge} status=${run.status} /> ${run.error ?? ""}</dd>
      <dt>Origin</dt><dd>${run.originSystemId}</dd>
      <dt>Created</dt><dd>${run.createdAt}</dd>
    </dl>
    ${run.traces.map(
      (t) => html`<h3>Attempt ${t.attempt} (${t.status}), ${t.steps.length} steps</h3>
        <table>
          <thead><tr><th scope="col">Step</th><th scope="col">Skill</th><th scope="col">Status</th><th scope="col">Payload</th></tr></thead>
          <tbody>
            ${t.steps.slice(0, 200).map(
              (
                s,
              ) => html`<tr class=${bad.first_bad_trace_id === t.id && bad.first_bad_step_index === s.stepIndex ? "bad" : ""}>
                <td>${s.stepIndex}</td><td>${s.skill}</td><td>${s.status}</td>
                <td>${s.erased ? "erased" : html`<code>${short(s.output ?? s.error ?? s.input, 60)}</code>`}</td>
              </tr>`,
            )}
          </tbody>
        </table>
        ${t.steps.length > 200 ? html`<p class="note">… and ${t.steps.length - 200} more steps.</p>` : null}`,
    )}
  </details>`;
}

/**
 * The bundle's log section (docs/proof-format.md section 13). Its check (src/lib/offline-checkpoint.ts,
 * verifyBundleLog) needs the operator's verifier key for the checkpoint's Ed25519 signature and runs
 * on node:crypto, which this page does not ship (it would break the first-load budget): the page
 * shows what the bundle claims, takes the key, and gives the exact command that checks it.
 */
function LogView({ log, file }: { log: NonNullable<Bundle["log"]>; file: string }) {
  const [key, setKey] = useState("");
  const size = log.checkpoint ? (/^[^\n]*\n(\d+)\n/.exec(log.checkpoint)?.[1] ?? null) : null;
  const quoted = (v: string) => `'${v.replace(/'/g, "'\\''")}'`;
  return html`<section class="log-inclusion" aria-labelledby="h-log" data-testid="bundle-log">
    <h3 id="h-log">The run's place in its tenant's signed log</h3>
    <dl class="facts">
      <dt>Leaf index</dt><dd data-testid="bundle-leaf-index">${log.leaf_index}</dd>
      ${
        log.checkpoint
          ? html`<dt>Checkpoint size (as the note says)</dt><dd data-testid="bundle-checkpoint-size">${size ?? "–"}</dd>
              <dt>Inclusion proof</dt><dd>${log.inclusion_proof?.length ?? 0} hash(es)</dd>
              <dt>Consistency proofs</dt><dd>${log.consistency.length}</dd>`
          : html`<dt>Checkpoint</dt><dd data-testid="bundle-not-checkpointed">not yet checkpointed when exported</dd>`
      }
    </dl>
    ${
      log.checkpoint
        ? html`<pre class="note-text">${log.checkpoint}</pre>
            <p class="note" data-testid="bundle-log-needs-key">
              Not verified here: the checkpoint's signature needs the operator's public (verifier) key, and the log check
              runs in <code>runproof proof verify</code>. Paste the key to get the command.
            </p>
            <label for="verifier-key">Operator's verifier key</label>
            <input
              id="verifier-key"
              type="text"
              spellcheck="false"
              autocomplete="off"
              placeholder="name+1a2b3c4d+base64…"
              value=${key}
              onInput=${(e: Event) => setKey((e.target as HTMLInputElement).value.trim())}
            />
            ${key ? html`<pre data-testid="verify-command">runproof proof verify ${quoted(file)} --key ${quoted(key)}</pre>` : null}`
        : null
    }
  </section>`;
}

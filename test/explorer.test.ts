/// <reference lib="dom" />
// (DOM types: the page.evaluate callbacks below run in the browser.)
// The web explorer in a real headless Chromium (puppeteer-core driving Debian's chromium): sign-in,
// the runs list, a live run progressing to VERIFIED, a run cancelled, a checkpointed run's badge and
// inclusion in its tenant's signed log, a tampered run shown TAMPERED with its step, "Download
// bundle", dropped bundles verified in the browser (intact VERIFIED, edited not; the log section
// shown, its key asked for), another tenant's run "not found", the agents/skills pages and the
// enqueue form's refusals, axe-core, and keyboard navigation. Without a Chromium the tests are
// skipped, and say so.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import test from "ava";
import type { Browser, Page } from "puppeteer-core";
import { exportBundle } from "../src/lib/bundle.ts";
import { checkpointNow, generateKeyPem } from "../src/lib/checkpoints.ts";
import { signerFromPem } from "../src/lib/offline-checkpoint.ts";
import { verifyBundle } from "../src/lib/offline-verify.ts";
import { nodeSha256 } from "../src/lib/sha256-node.ts";
import {
  explorerUrl,
  findChromium,
  launchBrowser,
  mainText,
  NO_CHROMIUM,
  seriousViolations,
  signIn,
  waitForText,
} from "./helpers/browser.ts";
import { createTestDatabase, type TestDatabase } from "./helpers/db.ts";
import { type ApiTenant, apiTenant, startTestServer, type TestServer } from "./helpers/graphql.ts";
import { asAttacker, completedRun } from "./helpers/ledger.ts";
import { enqueue, startTestWorker, waitForRun } from "./helpers/worker.ts";

const chromium = findChromium();

if (!chromium) {
  console.warn(`test/explorer.test.ts: ${NO_CHROMIUM}`);
  test.skip(`web explorer: ${NO_CHROMIUM}`, () => {});
} else {
  let db: TestDatabase;
  let server: TestServer;
  let browser: Browser;
  let a: ApiTenant;
  let b: ApiTenant;
  let base: string;
  let tmp: string;
  /** Finished runs of tenant a, oldest first. */
  const done: string[] = [];
  let tampered: string;
  let foreign: string;
  /** A tenant with 30 runs, for paging. */
  let c: ApiTenant;
  const many: string[] = [];

  test.before(async () => {
    db = await createTestDatabase("explorer");
    server = await startTestServer(db.url);
    base = explorerUrl(server.url);
    a = await apiTenant(db.pool, "acme");
    b = await apiTenant(db.pool, "globex");
    for (let i = 0; i < 3; i++) done.push((await completedRun(db.pool, a, { stepsPerTrace: 4 })).runId);
    ({ runId: tampered } = await completedRun(db.pool, a, { stepsPerTrace: 5 }));
    // A superuser with every trigger disabled rewrites step 2's output: only the hashes can tell.
    await asAttacker(db.pool, (c) =>
      c.query(
        `update runproof.step_payloads set output = '{"ok":true,"i":999}'
          where run_id = $1 and step_index = 2`,
        [tampered],
      ),
    );
    ({ runId: foreign } = await completedRun(db.pool, b, { stepsPerTrace: 2 }));
    c = await apiTenant(db.pool, "initech");
    for (let i = 0; i < 30; i++)
      many.unshift(
        await enqueue(db.pool, c, `run ${i}`, { version: 1, steps: [{ skill: "noop", input: {} }] }),
      );
    browser = await launchBrowser(chromium);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runproof-explorer-"));
  });
  test.after.always(async () => {
    await browser?.close();
    await server?.stop();
    await db?.drop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** What any page reported as an error or a Content Security Policy violation (the last test asserts none). */
  const pageProblems: string[] = [];
  async function newPage(): Promise<Page> {
    const page = await browser.newPage();
    page.on("pageerror", (err) => pageProblems.push(`page error: ${err}`));
    page.on("console", (m) => {
      if (/Content Security Policy/i.test(m.text())) pageProblems.push(`CSP: ${m.text()}`);
    });
    return page;
  }

  test.serial("the page is served at / with a strict CSP and no key in it", async (t) => {
    const res = await fetch(base);
    t.is(res.status, 200);
    t.regex(res.headers.get("content-type") ?? "", /^text\/html/);
    const csp = res.headers.get("content-security-policy") ?? "";
    t.regex(csp, /default-src 'none'/);
    t.regex(csp, /script-src 'self'(;|$)/);
    t.regex(csp, /connect-src 'self'/);
    const html = await res.text();
    const script = /<script type="module" src="([^"]+)"/.exec(html)?.[1];
    t.truthy(script);
    const js = await fetch(new URL(script!, base));
    t.is(js.status, 200);
    t.regex(js.headers.get("content-type") ?? "", /^text\/javascript/);
    t.is((await fetch(new URL("/explorer/nope.js", base))).status, 404);
    t.is((await fetch(base, { method: "POST", body: "{}" })).status, 405);
  });

  test.serial(
    "sign-in: a wrong key is refused; the right one shows the tenant, kept for the tab only",
    async (t) => {
      const page = await newPage();
      await page.goto(base);
      await page.waitForSelector("#api-key");
      await page.type("#api-key", "rp_not_a_key");
      await page.keyboard.press("Enter");
      const refused = await waitForText(page, /Sign-in failed/);
      t.regex(refused, /UNAUTHENTICATED/);

      await page.$eval("#api-key", (el) => {
        (el as HTMLInputElement).value = "";
      });
      await page.type("#api-key", a.apiKey);
      await page.keyboard.press("Enter");
      await page.waitForSelector("[data-testid=tenant-name]");
      t.is(await page.$eval("[data-testid=tenant-name]", (el) => el.textContent), "acme");
      const storage = await page.evaluate(() => ({
        session: JSON.stringify(sessionStorage),
        local: JSON.stringify(localStorage),
        url: location.href,
      }));
      t.true(storage.session.includes(a.apiKey), "the key is in sessionStorage");
      t.false(storage.local.includes(a.apiKey), "never in localStorage");
      t.false(storage.url.includes(a.apiKey), "never in the URL");
      // A reload keeps the tab signed in; sign-out forgets the key.
      await page.reload();
      await page.waitForSelector("[data-testid=tenant-name]");
      const signOut = await page.waitForSelector("xpath/.//button[contains(., 'Sign out')]");
      await signOut!.click();
      await page.waitForSelector("#api-key");
      t.false((await page.evaluate(() => JSON.stringify(sessionStorage))).includes(a.apiKey));
      await page.close();
    },
  );

  test.serial(
    "the runs list: status, agent, origin, proof badges; filters; no other tenant's runs",
    async (t) => {
      const page = await newPage();
      await signIn(page, base, a.apiKey);
      await page.waitForSelector(`tr[data-run-id="${tampered}"] .verdict-tampered`);
      const rows = await page.$$eval("table.runs tbody tr", (trs) =>
        trs.map((tr) => ({
          id: tr.getAttribute("data-run-id"),
          text: (tr.textContent ?? "").replace(/\s+/g, " "),
        })),
      );
      t.deepEqual(rows.map((r) => r.id).sort(), [...done, tampered].sort());
      t.false(rows.some((r) => r.id === foreign));
      for (const r of rows) {
        t.regex(r.text, /succeeded/);
        t.regex(r.text, /agent/);
        t.regex(r.text, /ava-test/);
        t.regex(r.text, r.id === tampered ? /TAMPERED/ : /VERIFIED/);
        t.regex(r.text, /GUARDED/);
      }
      t.regex(await mainText(page), /4 runs/);
      t.is((await page.$$("[data-testid=checkpoint-badge]")).length, 0, "no checkpoint yet, no badge");
      // Filter by a status no run has.
      await page.select("select[name=status]", "failed");
      await waitForText(page, /0 runs/);
      t.is((await page.$$("table.runs tbody tr")).length, 0);
      await page.select("select[name=status]", "succeeded");
      await waitForText(page, /4 runs/);
      await page.close();
    },
  );

  test.serial("the runs list pages by cursor: 25, then the 5 older, then back", async (t) => {
    const page = await newPage();
    await signIn(page, base, c.apiKey);
    await waitForText(page, /30 runs/);
    const ids = () =>
      page.$$eval("table.runs tbody tr", (trs) => trs.map((tr) => tr.getAttribute("data-run-id")));
    const first = await ids();
    t.deepEqual(first, many.slice(0, 25), "newest first");
    const click = async (label: string) => {
      const b = await page.waitForSelector(`xpath/.//button[normalize-space(.)='${label}']`);
      await b!.click();
    };
    t.true(
      await page.$eval(
        "xpath/.//button[normalize-space(.)='Newer']",
        (b) => (b as HTMLButtonElement).disabled,
      ),
    );
    await click("Older");
    await page.waitForFunction(
      (id: string) => !document.querySelector(`tr[data-run-id="${id}"]`),
      {},
      first[0]!,
    );
    t.deepEqual(await ids(), many.slice(25));
    t.true(
      await page.$eval(
        "xpath/.//button[normalize-space(.)='Older']",
        (b) => (b as HTMLButtonElement).disabled,
      ),
    );
    await click("Newer");
    await page.waitForSelector(`tr[data-run-id="${first[0]}"]`);
    t.deepEqual(await ids(), first);
    await page.close();
  });

  test.serial("a live run progresses to VERIFIED without a reload", async (t) => {
    const plan = {
      version: 1,
      steps: [0, 1, 2, 3].map(() => ({ skill: "wait", input: { ms: 250 } })),
    };
    const runId = await enqueue(db.pool, a, "follow me live", plan);
    const page = await newPage();
    await signIn(page, base, a.apiKey, `#/runs/${runId}`);
    await waitForText(page, /follow me live/);
    // Live updates are on, and the proof (asked once the run is shown) is not VERIFIED before it ran.
    await waitForText(page, /● following/);
    t.regex(await waitForText(page, /IN_PROGRESS/), /planned|pending/);
    const worker = await startTestWorker(db.url);
    try {
      const text = await waitForText(page, /VERIFIED/, 60_000);
      t.regex(text, /succeeded/);
      t.regex(text, /4 of 4 plan steps/);
      t.is(await page.$eval("svg.timeline", (s) => s.getAttribute("data-steps")), "4");
      t.is(
        await page.$eval(
          "svg.timeline .bars.status-succeeded",
          (p) => (p.getAttribute("d") ?? "").split("z").length - 1,
        ),
        4,
      );
      t.is((await waitForRun(db.pool, runId)).status, "succeeded");
    } finally {
      await worker.stop();
    }
    await page.close();
  });

  test.serial("a run that has not started is cancelled from its page", async (t) => {
    const runId = await enqueue(db.pool, a, "cancel me", {
      version: 1,
      steps: [{ skill: "noop", input: {} }],
    });
    const page = await newPage();
    await signIn(page, base, a.apiKey, `#/runs/${runId}`);
    await waitForText(page, /cancel me/);
    const button = await page.waitForSelector("xpath/.//button[contains(., 'Cancel run')]");
    await button!.click();
    const text = await waitForText(page, /cancelled from the web explorer/);
    t.regex(text, /cancelled/);
    t.is(
      await page.$("xpath/.//button[contains(., 'Cancel run')]"),
      null,
      "no cancel button once it is final",
    );
    const { rows } = await db.pool.query(`select status, error from runproof.runs where id = $1`, [runId]);
    t.deepEqual(rows[0], { status: "cancelled", error: "cancelled from the web explorer" });
    await page.close();
  });

  test.serial(
    "a checkpointed run shows the badge and its inclusion; a run sealed after the checkpoint does not",
    async (t) => {
      const d = await apiTenant(db.pool, "umbrella");
      const inLog: string[] = [];
      for (let i = 0; i < 3; i++) inLog.push((await completedRun(db.pool, d, { stepsPerTrace: 2 })).runId);
      // What `runproof checkpoint now` does, signed with a throwaway key (as test/worker-checkpoint.test.ts).
      const signer = signerFromPem("runproof.test/explorer", generateKeyPem());
      const cp = await checkpointNow(
        db.pool,
        {
          schedule: "* * * * *",
          key: undefined,
          keyFile: undefined,
          keyName: signer.name,
          anchors: [],
          retryBaseMs: 1000,
          retryMaxMs: 60000,
        },
        signer,
      );
      t.true(cp.signed >= 1);
      const { runId: later } = await completedRun(db.pool, d, { stepsPerTrace: 2 });

      const page = await newPage();
      await signIn(page, base, d.apiKey);
      await page.waitForSelector(`tr[data-run-id="${later}"] [data-testid=checkpoint-badge]`);
      const badges = await page.$$eval("table.runs tbody tr", (trs) =>
        Object.fromEntries(
          trs.map((tr) => [
            tr.getAttribute("data-run-id"),
            tr.querySelector("[data-testid=checkpoint-badge]")?.textContent ?? null,
          ]),
        ),
      );
      t.deepEqual(badges, {
        [inLog[0]]: "checkpointed",
        [inLog[1]]: "checkpointed",
        [inLog[2]]: "checkpointed",
        [later]: "not checkpointed",
      });

      await page.goto(`${base}#/runs/${inLog[0]}`);
      await page.waitForSelector("[data-testid=log-inclusion][data-checkpointed=true]");
      const shown = await page.$eval("[data-testid=log-inclusion]", (el) => ({
        leaf: el.querySelector("[data-testid=leaf-index]")?.textContent,
        size: el.querySelector("[data-testid=checkpoint-size]")?.textContent,
        proof: el.querySelector("[data-testid=inclusion-length]")?.textContent,
        note: el.querySelector("[data-testid=signed-note]")?.textContent ?? "",
      }));
      t.is(shown.leaf, "0");
      t.is(shown.size, "3");
      t.is(shown.proof, "2 hash(es)", "a leaf of a 3-leaf tree has a 2-hash inclusion proof");
      t.true(shown.note.startsWith(`runproof.test/explorer/${d.tenantId}\n3\n`), shown.note);
      t.regex(shown.note, /\n\u2014 runproof\.test\/explorer [A-Za-z0-9+/=]+\n$/);

      await page.goto(`${base}#/runs/${later}`);
      await page.waitForSelector("[data-testid=not-checkpointed]");
      t.regex(
        await page.$eval("[data-testid=log-inclusion]", (el) => el.textContent ?? ""),
        /Not yet checkpointed: leaf 3 of the log, the latest checkpoint holds 3 leaves\./,
      );
      await page.close();
    },
  );

  test.serial("a tampered run is shown TAMPERED, its first bad step highlighted", async (t) => {
    const page = await newPage();
    await signIn(page, base, a.apiKey, `#/runs/${tampered}`);
    const text = await waitForText(page, /TAMPERED/);
    t.regex(text, /First bad step: attempt 1, step 2\./);
    t.regex(text, /attempt 1: step 2: /);
    await page.waitForSelector('tr.bad[data-step="2"]');
    t.is(await page.$$eval("tr.bad", (r) => r.length), 1);
    t.is(await page.$$eval("svg.timeline rect.bad", (r) => r.length), 1);
    // The step's (rewritten) output is what the database holds now.
    await page.click('tr[data-step="2"] button');
    const detail = await waitForText(page, /Output \(redacted\)/);
    t.regex(detail, /"i": 999/);
    await page.close();
  });

  test.serial("Download bundle gives the bundle the CLI verifies", async (t) => {
    const dir = path.join(tmp, "downloads");
    fs.mkdirSync(dir);
    const page = await newPage();
    const cdp = await page.createCDPSession();
    await cdp.send("Browser.setDownloadBehavior", { behavior: "allow", downloadPath: dir });
    await signIn(page, base, a.apiKey, `#/runs/${done[0]}`);
    await waitForText(page, /VERIFIED/);
    const button = await page.waitForSelector("xpath/.//button[contains(., 'Download bundle')]");
    await button!.click();
    const file = path.join(dir, `runproof-bundle-${done[0]}.json`);
    for (let i = 0; i < 100 && !fs.existsSync(file); i++) await new Promise((r) => setTimeout(r, 100));
    const bundle = JSON.parse(fs.readFileSync(file, "utf8"));
    t.is(bundle.format, "runproof.bundle/2");
    t.is(bundle.run_id, done[0]);
    const proof = await verifyBundle(bundle, { sha256: nodeSha256 });
    t.is(proof.verification_status, "VERIFIED");
    t.is(proof.step_count, 4);
    await page.close();
  });

  async function dropText(page: Page, selector: string, name: string, text: string): Promise<void> {
    await page.evaluate(
      (sel: string, fileName: string, content: string) => {
        const dt = new DataTransfer();
        dt.items.add(new File([content], fileName, { type: "application/json" }));
        const target = document.querySelector(sel) ?? document.body;
        target.dispatchEvent(
          new DragEvent("dragover", { dataTransfer: dt, bubbles: true, cancelable: true }),
        );
        target.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
      },
      selector,
      name,
      text,
    );
  }

  test.serial("a dropped intact bundle is VERIFIED in the browser; an edited one is not", async (t) => {
    const bundle = await exportBundle(db.pool, a.tenantId, done[1]!);
    const page = await newPage();
    const requests: string[] = [];
    // Signed out (the sign-in page makes no request), so every request seen is the verifier's doing.
    await page.goto(base);
    await page.waitForSelector("#api-key");
    page.on("request", (r) => requests.push(`${r.method()} ${r.url()}`));
    // Dropped anywhere (here on the sign-in page): the Verify page takes it.
    await dropText(page, "main", "intact.json", JSON.stringify(bundle));
    await page.waitForSelector("[data-testid=local-verdict]");
    t.is(await page.$eval("[data-testid=local-verdict]", (e) => e.getAttribute("data-verdict")), "VERIFIED");
    t.regex(await mainText(page), /4 step\(s\)/);
    // Tenant a's log was checkpointed by the checkpoint test: the bundle carries its log section, whose
    // signature this page cannot check without the operator's key; it says so and gives the command.
    const logText = await page.$eval("[data-testid=bundle-log]", (e) =>
      (e.textContent ?? "").replace(/\s+/g, " "),
    );
    const text = (id: string) => page.$eval(`[data-testid=${id}]`, (e) => e.textContent);
    t.is(await text("bundle-leaf-index"), String(bundle.log!.leaf_index));
    t.is(bundle.log!.leaf_index, 1, "done[1] is tenant a's second sealed run");
    // The size the note states (its second line): every run tenant a had sealed when it was signed.
    t.is(await text("bundle-checkpoint-size"), bundle.log!.checkpoint!.split("\n")[1]);
    t.true(Number(await text("bundle-checkpoint-size")) >= 4);
    t.regex(logText, /needs the operator's public \(verifier\) key/);
    await page.type("#verifier-key", "runproof.test/explorer+00000000+AAAA");
    t.is(
      await page.$eval("[data-testid=verify-command]", (e) => e.textContent),
      "runproof proof verify 'intact.json' --key 'runproof.test/explorer+00000000+AAAA'",
    );
    t.deepEqual(
      requests.filter((r) => !r.startsWith(`GET ${base}explorer/`)),
      [],
      "nothing but the page's own scripts is fetched while verifying, and nothing is sent",
    );

    // Edit step 1's output in the bundle: the recomputed commitment no longer matches.
    const edited = structuredClone(bundle);
    edited.traces[0]!.steps[1]!.payload!.output!.text = '{"i": 1, "ok": false}';
    const file = path.join(tmp, "edited.json");
    fs.writeFileSync(file, JSON.stringify(edited));
    const input = await page.waitForSelector("#bundle-file");
    await (input as unknown as { uploadFile(f: string): Promise<void> }).uploadFile(file);
    await page.waitForSelector('[data-testid=local-verdict]:not([data-verdict="VERIFIED"])');
    const verdict = await page.$eval("[data-testid=local-verdict]", (e) => e.getAttribute("data-verdict"));
    const cli = await verifyBundle(edited, { sha256: nodeSha256 });
    t.is(verdict, cli.verification_status, "the browser and the CLI agree");
    t.is(verdict, "TAMPERED");
    t.regex(await page.$eval("[data-testid=local-reason]", (e) => e.textContent ?? ""), /step 1/);
    t.is(
      await page.$eval("[data-testid=local-first-bad]", (e) => e.textContent),
      "First bad step: attempt 1, step 1.",
    );
    // Not JSON at all.
    await dropText(page, "[data-testid=dropzone]", "junk.json", "{ not json");
    await page.waitForSelector('[data-testid=local-verdict][data-verdict="INVALID_BUNDLE"]');
    t.pass();
    await page.close();
  });

  test.serial("another tenant's run id shows 'not found'", async (t) => {
    const page = await newPage();
    await signIn(page, base, a.apiKey, `#/runs/${foreign}`);
    const text = await waitForText(page, /not found/);
    t.regex(text, new RegExp(`Run ${foreign} not found`));
    t.notRegex(text, /VERIFIED|succeeded/);
    await page.close();
  });

  test.serial(
    "agents and skills pages; the enqueue form shows each refusal's code and message",
    async (t) => {
      const page = await newPage();
      await signIn(page, base, a.apiKey, "#/agents");
      t.regex(await waitForText(page, /Enqueue a run/), /agent/);
      await page.goto(`${base}#/skills`);
      t.regex(await waitForText(page, /wait/), /noop/);

      await page.goto(`${base}#/enqueue`);
      await page.waitForSelector("#f-goal");
      await page.waitForFunction(
        () => (document.querySelector("#f-agent") as HTMLSelectElement).value !== "",
      );
      await page.type("#f-goal", "from the form");
      const setValue = (sel: string, v: string) =>
        page.$eval(
          sel,
          (el, value) => {
            (el as HTMLInputElement).value = value as string;
            el.dispatchEvent(new Event("input", { bubbles: true }));
          },
          v,
        );
      // A reserved origin: RPORS.
      await setValue("#f-origin", "legacy-migration");
      await page.click("button[type=submit]");
      let text = await waitForText(page, /The run was refused/);
      t.regex(text, /RPORS/);
      t.regex(text, /origin_system_id 'legacy-migration' is reserved/);
      t.regex(text, /Hint: /);
      // A plan naming an unknown skill: RPSKL.
      await setValue("#f-origin", "web-test");
      await setValue(
        "#f-plan",
        JSON.stringify({ version: 1, steps: [{ skill: "no_such_skill", input: {} }] }),
      );
      await page.click("button[type=submit]");
      text = await waitForText(page, /RPSKL/);
      t.regex(text, /no_such_skill/);
      // Too many attempts: the database's own refusal.
      await setValue("#f-plan", JSON.stringify({ version: 1, steps: [{ skill: "noop", input: {} }] }));
      await setValue("#f-attempts", "99");
      await page.click("button[type=submit]");
      text = await waitForText(page, /RPVAL|23514/);
      t.regex(text, /attempt/i);
      // A good one opens the new run.
      await setValue("#f-attempts", "2");
      await page.click("button[type=submit]");
      await waitForText(page, /from the form/);
      const runId = await page.evaluate(() => location.hash.split("/")[2]);
      const { rows } = await db.pool.query(
        `select tenant_id, origin_system_id from runproof.runs where id = $1`,
        [runId],
      );
      t.is(rows[0]?.tenant_id, a.tenantId);
      t.is(rows[0]?.origin_system_id, "web-test");
      await page.close();
    },
  );

  test.serial("axe-core finds no serious or critical violations", async (t) => {
    const page = await newPage();
    await page.goto(base);
    await page.waitForSelector("#api-key");
    const check = async (where: string) => {
      const v = await seriousViolations(page);
      t.deepEqual(
        v.map(
          (x) => `${x.id} (${x.impact}): ${x.help} at ${x.nodes.map((n) => n.target.join(" ")).join(", ")}`,
        ),
        [],
        where,
      );
    };
    await check("sign-in");
    await signIn(page, base, a.apiKey);
    await page.waitForSelector(`tr[data-run-id="${tampered}"] .verdict-tampered`);
    await check("runs list");
    await page.goto(`${base}#/runs/${tampered}`);
    await waitForText(page, /TAMPERED/);
    await page.click('tr[data-step="2"] button');
    await waitForText(page, /Output \(redacted\)/);
    await check("a run with a step open");
    await page.goto(`${base}#/verify`);
    await page.waitForSelector("[data-testid=dropzone]");
    await dropText(
      page,
      "[data-testid=dropzone]",
      "b.json",
      JSON.stringify(await exportBundle(db.pool, a.tenantId, tampered)),
    );
    await page.waitForSelector("[data-testid=local-verdict]");
    await check("a bundle check");
    await page.goto(`${base}#/enqueue`);
    await page.waitForSelector("#f-goal");
    await check("the enqueue form");
    await page.close();
  });

  test.serial("keyboard only: sign in, open a run, open a step", async (t) => {
    const page = await newPage();
    await page.goto(base);
    await page.waitForSelector("#api-key");
    const active = () =>
      page.evaluate(() => {
        const el = document.activeElement as HTMLElement | null;
        return {
          id: el?.id ?? "",
          tag: el?.tagName ?? "",
          text: (el?.textContent ?? "").trim(),
          href: el?.getAttribute("href") ?? "",
        };
      });
    const tabUntil = async (pred: (a: Awaited<ReturnType<typeof active>>) => boolean, max = 60) => {
      for (let i = 0; i < max; i++) {
        await page.keyboard.press("Tab");
        if (pred(await active())) return true;
      }
      return false;
    };
    t.true(await tabUntil((x) => x.id === "api-key"), "Tab reaches the key field");
    await page.keyboard.type(a.apiKey);
    await page.keyboard.press("Enter");
    await page.waitForSelector(`tr[data-run-id="${tampered}"]`);
    t.true(await tabUntil((x) => x.href === `#/runs/${tampered}`), "Tab reaches the tampered run's link");
    await page.keyboard.press("Enter");
    await waitForText(page, /TAMPERED/);
    t.true(
      await tabUntil((x) => x.text === "Details" && x.tag === "BUTTON", 200),
      "Tab reaches a step's Details",
    );
    await page.keyboard.press("Enter");
    await waitForText(page, /Output \(redacted\)/);
    t.true(await page.evaluate(() => document.activeElement?.classList.contains("step-detail") ?? false));
    await page.close();
  });

  test.serial("no page reported an error or a Content Security Policy violation", (t) => {
    t.deepEqual(pageProblems, []);
  });
}

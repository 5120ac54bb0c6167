/// <reference lib="dom" />
// (DOM types: the page.evaluate callbacks below run in the browser.)
// Headless Chromium for the web explorer's tests (puppeteer-core drives the system's Chromium; no
// browser is downloaded). Debian's package: apt-get install -y chromium (.ci/run installs it).
import fs from "node:fs";
import { createRequire } from "node:module";
import puppeteer, { type Browser, type Page } from "puppeteer-core";

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

/** The Chromium to drive: RUNPROOF_CHROMIUM, else the first of the usual paths that exists. */
export function findChromium(): string | null {
  const fromEnv = process.env.RUNPROOF_CHROMIUM;
  if (fromEnv) return fs.existsSync(fromEnv) ? fromEnv : null;
  return CANDIDATES.find((p) => fs.existsSync(p)) ?? null;
}

export const NO_CHROMIUM =
  "browser tests SKIPPED: no Chromium found (looked at RUNPROOF_CHROMIUM, " +
  `${CANDIDATES.join(", ")}); install it with: apt-get install -y chromium`;

export async function launchBrowser(executablePath: string): Promise<Browser> {
  return puppeteer.launch({
    executablePath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
    ],
    defaultViewport: { width: 1280, height: 900 },
  });
}

/** The explorer's base URL (/) from the GraphQL URL. */
export const explorerUrl = (graphqlUrl: string) => graphqlUrl.replace(/\/graphql$/, "/");

/** Signs in on the explorer's page with an API key, the way a user does. */
export async function signIn(page: Page, baseUrl: string, apiKey: string, hash = ""): Promise<void> {
  await page.goto(baseUrl + hash, { waitUntil: "load" });
  await page.waitForSelector("#api-key");
  await page.type("#api-key", apiKey);
  await page.keyboard.press("Enter");
  await page.waitForSelector("[data-testid=tenant-name]");
}

/** Text content of the page's main element, white space collapsed. */
export const mainText = (page: Page) => page.$eval("main", (m) => (m.textContent ?? "").replace(/\s+/g, " "));

/** Waits until the main element's text matches. */
export async function waitForText(page: Page, pattern: RegExp, timeout = 30_000): Promise<string> {
  await page.waitForFunction(
    (source: string, flags: string) =>
      new RegExp(source, flags).test(
        (document.querySelector("main")?.textContent ?? "").replace(/\s+/g, " "),
      ),
    { timeout, polling: 100 },
    pattern.source,
    pattern.flags,
  );
  return mainText(page);
}

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: string[] }>;
}

/** Runs axe-core on the page and returns its violations of impact serious or critical. */
export async function seriousViolations(page: Page): Promise<AxeViolation[]> {
  const axePath = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
  // Through DevTools, not a <script> tag: the page's CSP allows no inline or foreign script.
  await page.evaluate(fs.readFileSync(axePath, "utf8"));
  const violations = (await page.evaluate(async () => {
    const axe = (
      globalThis as unknown as { axe: { run(ctx: Document, o: object): Promise<{ violations: unknown[] }> } }
    ).axe;
    const r = await axe.run(document, { resultTypes: ["violations"] });
    return r.violations;
  })) as AxeViolation[];
  return violations.filter((v) => v.impact === "serious" || v.impact === "critical");
}

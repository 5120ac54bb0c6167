// Runs the real `runproof` command as a child process: the Node that runs the tests, with tsx,
// on src/bin/runproof.ts, exactly as `npm run runproof -- ...` would.
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { REPO_ROOT } from "../../src/lib/database.ts";

export const CLI = path.join(REPO_ROOT, "src/bin/runproof.ts");

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** Added to (or, when undefined, removed from) the test process's environment. */
  env?: Record<string, string | undefined>;
  input?: string;
  timeoutMs?: number;
}

function childEnv(extra: CliOptions["env"] = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, RUNPROOF_LOG_LEVEL: "warn", NO_COLOR: "1", ...extra };
  for (const [k, v] of Object.entries(extra)) if (v === undefined) delete env[k];
  return env;
}

export function spawnCli(args: string[], opts: CliOptions = {}): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", CLI, ...args], {
    cwd: REPO_ROOT,
    env: childEnv(opts.env),
    stdio: ["pipe", "pipe", "pipe"],
  });
}

/** Runs the CLI to completion and collects its output. */
export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const child = spawnCli(args, opts);
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (d) => (stdout += d));
  child.stderr!.setEncoding("utf8").on("data", (d) => (stderr += d));
  child.stdin!.end(opts.input ?? "");
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(
        new Error(
          `runproof ${args.join(" ")} did not finish in ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`,
        ),
      );
    }, timeoutMs);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Runs the CLI with --json and parses stdout; fails with the output when the exit code is not `expect`. */
export async function cliJson<T = any>(
  args: string[],
  opts: CliOptions & { expect?: number } = {},
): Promise<T> {
  const r = await runCli([...args, "--json"], opts);
  if (r.code !== (opts.expect ?? 0)) {
    throw new Error(`runproof ${args.join(" ")} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
  return JSON.parse(r.stdout);
}

/** Collects a child's output as it comes (the text so far is always in .stdout and .stderr). */
export function collect(child: ChildProcess): { stdout: string; stderr: string } {
  const seen = { stdout: "", stderr: "" };
  child.stdout!.setEncoding("utf8").on("data", (d) => (seen.stdout += d));
  child.stderr!.setEncoding("utf8").on("data", (d) => (seen.stderr += d));
  return seen;
}

/** Polls until cond() returns a truthy value, which it returns. */
export async function until<T>(
  cond: () => T | Promise<T>,
  timeoutMs: number,
  what: string,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

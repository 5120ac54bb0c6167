// The psql sessions of docs/dba.md, run for real. A session is a fenced block with the info string
// `psql`; its input lines are the lines that start with a psql prompt (`runproof_dba=# `, and the
// continuation prompts `runproof_dba-# `, `runproof_dba(# `, `runproof_dba=*# `, ...); every other
// line of the block is output and is regenerated. Each session is fed, line by line, to one
// interactive `psql -X -n` on a pseudo-terminal (util-linux `script`), so the prompts, the echo of
// each line, errors (`ERROR:  ...`, no `psql:<stdin>:N:` prefix) and results appear exactly as a
// DBA at a terminal sees them, stdout and stderr in the order psql wrote them. (So a session must
// not print a line that starts with a prompt, e.g. with \echo: it would be read as input.)
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { StringDecoder } from "node:string_decoder";

/** The name every prompt shows, whatever the scratch database is called. */
export const PROMPT_NAME = "runproof_dba";
const PROMPT = "runproof_dba%R%x%# ";
// %R: = (or ^, !) at the start of a statement; - ( ' " $ * inside one. %x: * ! ? in a transaction.
const PROMPT_SOURCE = `${PROMPT_NAME}[=^!\\-*'"$(][*!?]?[#>]`;
/** A line that starts with a prompt: the rest of it is input. */
export const INPUT_LINE = new RegExp(`^${PROMPT_SOURCE}(?: |$)`);
/** The output ends with a prompt: psql waits for the next line. */
const WAITING = new RegExp(`(?:^|\\n)${PROMPT_SOURCE} $`);
const FENCE_OPEN = /^```psql\s*$/;
const FENCE_CLOSE = /^```\s*$/;

export interface Session {
  /** 0-based index in page order. */
  index: number;
  /** The heading (## ...) the session is under. */
  heading: string;
  /** Line numbers (0-based) of the opening and closing fences in the page. */
  open: number;
  close: number;
  /** The input lines, prompts removed. */
  inputs: string[];
  /** The lines between the fences. */
  body: string[];
}

/** The sessions of a page, in page order. */
export function parseSessions(page: string): Session[] {
  const lines = page.split("\n");
  const sessions: Session[] = [];
  let heading = "(top of the page)";
  let inOtherFence = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (!inOtherFence && /^#{1,6} /.test(line)) heading = line.replace(/^#+ /, "");
    if (!inOtherFence && FENCE_OPEN.test(line)) {
      const close = lines.findIndex((l, j) => j > i && FENCE_CLOSE.test(l));
      if (close < 0) throw new Error(`line ${i + 1}: a psql block that is never closed`);
      const body = lines.slice(i + 1, close);
      const inputs = body.filter((l) => INPUT_LINE.test(l)).map((l) => l.replace(INPUT_LINE, ""));
      if (inputs.length === 0) throw new Error(`line ${i + 1}: a psql block without a prompt line`);
      sessions.push({ index: sessions.length, heading, open: i, close, inputs, body });
      i = close;
      continue;
    }
    if (/^```/.test(line)) inOtherFence = !inOtherFence;
  }
  return sessions;
}

/** Replaces the body of every session with its transcript (one per session, in order). */
export function replaceSessions(page: string, transcripts: string[][]): string {
  const lines = page.split("\n");
  const sessions = parseSessions(page);
  if (sessions.length !== transcripts.length) {
    throw new Error(`${sessions.length} sessions but ${transcripts.length} transcripts`);
  }
  for (const s of [...sessions].reverse())
    lines.splice(s.open + 1, s.close - s.open - 1, ...transcripts[s.index]);
  return lines.join("\n");
}

/**
 * The psql client: $RUNPROOF_PSQL, else `psql` on PATH, else the newest
 * /usr/lib/postgresql/<version>/bin/psql (Debian's postgresql-client); null when there is none.
 */
export function findPsql(): string | null {
  const explicit = process.env.RUNPROOF_PSQL;
  if (explicit) return existsSync(explicit) ? explicit : null;
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    const p = path.join(dir || ".", "psql");
    if (dir && existsSync(p)) return p;
  }
  const base = "/usr/lib/postgresql";
  if (!existsSync(base)) return null;
  const versions = readdirSync(base)
    .filter((v) => existsSync(path.join(base, v, "bin", "psql")))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length ? path.join(base, versions[0], "bin", "psql") : null;
}

/**
 * `script` from util-linux, which gives psql a pseudo-terminal; null when there is none (the BSD
 * `script` of macOS takes other options).
 */
export function findScript(): string | null {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    const p = path.join(dir, "script");
    if (!dir || !existsSync(p)) continue;
    try {
      if (
        execFileSync(p, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).includes(
          "util-linux",
        )
      ) {
        return p;
      }
    } catch {
      // not util-linux's
    }
  }
  return null;
}

/** "psql (PostgreSQL) 15.18 (Debian ...)" */
export function psqlVersion(psql: string): string {
  return execFileSync(psql, ["--version"], { encoding: "utf8" }).trim();
}

/**
 * The environment psql runs in: the connection from the URL (so no password is on a command
 * line), UTC, UTF-8, and nothing from the caller's PG* variables.
 */
export function psqlEnv(url: string): NodeJS.ProcessEnv {
  const u = new URL(url);
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    SHELL: "/bin/sh",
    TERM: "dumb",
    LANG: "C.UTF-8",
    LC_ALL: "C.UTF-8",
    PGHOST: u.hostname,
    PGPORT: u.port || "5432",
    PGUSER: decodeURIComponent(u.username),
    PGPASSWORD: decodeURIComponent(u.password),
    PGDATABASE: decodeURIComponent(u.pathname.slice(1)),
    PGTZ: "UTC",
    PGCLIENTENCODING: "UTF8",
    PGAPPNAME: "docs-dba",
    PGCONNECT_TIMEOUT: "10",
  };
}

/** Loads docs/dba-seed.sql (or another file) with psql, stopping at the first error. */
export function loadSeed(psql: string, url: string, file: string): void {
  try {
    execFileSync(psql, ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", file], {
      env: psqlEnv(url),
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`loading ${file} failed: ${err.stderr?.trim() || err.message}`);
  }
}

const shellQuote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

export interface RunSessionOptions {
  psql: string;
  script?: string;
  /** The database, as a postgres:// URL (a superuser: the sessions disable triggers). */
  url: string;
  inputs: string[];
  /** psql's working directory (\i and \ir paths). */
  cwd?: string;
  /** How long one line may take before the session is abandoned. */
  lineTimeoutMs?: number;
}

/**
 * Runs one session: one interactive psql, fed one line at a time (the next line is written only
 * when psql shows its prompt, as a person would type it). Returns the transcript lines: each input
 * line after its prompt, then its output; the start-up banner and the closing \q are left out.
 */
export async function runSession(opts: RunSessionOptions): Promise<string[]> {
  const script = opts.script ?? findScript();
  if (!script) throw new Error("`script` (util-linux) is not installed: psql needs a pseudo-terminal");
  const args = [
    "-X", // no ~/.psqlrc
    "-n", // no readline: the terminal echoes the input, nothing else does
    "--pset=pager=off",
    `--variable=PROMPT1=${PROMPT}`,
    `--variable=PROMPT2=${PROMPT}`,
  ];
  const command = `exec ${[opts.psql, ...args].map(shellQuote).join(" ")}`;
  const child = spawn(script, ["--quiet", "--flush", "--return", "--command", command, "/dev/null"], {
    cwd: opts.cwd,
    stdio: ["pipe", "pipe", "pipe"],
    env: psqlEnv(opts.url),
  });
  const timeoutMs = opts.lineTimeoutMs ?? 120_000;
  const decoder = new StringDecoder("utf8");
  let all = ""; // everything psql wrote
  let sinceWrite = ""; // since the last line was written
  let stderr = "";
  let waiter: { resolve: () => void; reject: (e: Error) => void } | undefined;
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  child.stdout?.on("data", (d: Buffer) => {
    const text = decoder.write(d);
    all += text;
    sinceWrite += text;
    if (waiter && WAITING.test(sinceWrite)) {
      const w = waiter;
      waiter = undefined;
      w.resolve();
    }
  });
  void exited.then((code) => {
    waiter?.reject(new Error(`psql exited (status ${code}) before showing its prompt`));
    waiter = undefined;
  });
  const waitForPrompt = (what: string) =>
    new Promise<void>((resolve, reject) => {
      if (WAITING.test(sinceWrite)) return resolve();
      const timer = setTimeout(() => {
        waiter = undefined;
        reject(new Error(`no psql prompt within ${timeoutMs} ms after ${what}`));
      }, timeoutMs);
      waiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  const write = (line: string) => {
    sinceWrite = "";
    child.stdin?.write(`${line}\n`);
  };

  let transcriptStart = -1;
  let transcriptEnd = -1;
  try {
    await waitForPrompt("connecting");
    transcriptStart = all.lastIndexOf(`\n${PROMPT_NAME}`) + 1;
    for (const [i, line] of opts.inputs.entries()) {
      if (/[\r\n]/.test(line)) throw new Error(`input line ${i + 1} holds a line break`);
      write(line);
      await waitForPrompt(`input line ${i + 1}: ${line}`);
    }
    transcriptEnd = all.length - (sinceWrite.length - sinceWrite.lastIndexOf(PROMPT_NAME));
    write("\\q");
    const code = await Promise.race([
      exited,
      new Promise<"timeout">((r) => setTimeout(() => r("timeout"), timeoutMs)),
    ]);
    if (code !== 0) throw new Error(`psql did not exit cleanly after \\q (${code})`);
  } catch (e) {
    stop(child);
    const tail = all.replaceAll("\r", "").split("\n").slice(-15).join("\n");
    throw new Error(`${(e as Error).message}\n--- psql's last output:\n${tail}\n--- stderr:\n${stderr}`);
  }
  return all.slice(transcriptStart, transcriptEnd).replaceAll("\r\n", "\n").replace(/\n$/, "").split("\n");
}

function stop(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}

export interface RegenerateOptions {
  psql: string;
  url: string;
  cwd?: string;
  onSession?: (s: Session, ms: number) => void;
}

/** Runs every session of the page, in page order, on one database, and returns the new page. */
export async function regeneratePage(
  page: string,
  opts: RegenerateOptions,
): Promise<{ page: string; sessions: number; commands: number }> {
  const sessions = parseSessions(page);
  const script = findScript() ?? undefined;
  const transcripts: string[][] = [];
  let commands = 0;
  for (const s of sessions) {
    const t0 = performance.now();
    let transcript: string[];
    try {
      transcript = await runSession({
        psql: opts.psql,
        script,
        url: opts.url,
        inputs: s.inputs,
        cwd: opts.cwd,
      });
    } catch (e) {
      throw new Error(`session ${s.index + 1} (${s.heading}): ${(e as Error).message}`);
    }
    transcripts.push(transcript);
    commands += transcript.filter((l) => /^runproof_dba[=^!][*!?]?[#>] /.test(l)).length;
    opts.onSession?.(s, performance.now() - t0);
  }
  return { page: replaceSessions(page, transcripts), sessions: sessions.length, commands };
}

// Ids the seed fixes all look like 00000000-0000-0000-0000-0000000000xx; every other uuid is made
// by the database (traces, incidents, erasures, keys).
const UUID = /\b(?!00000000-0000-0000-0000-)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/g;
const HASH = /(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])/g;
const TIMESTAMP = /\b\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}(?::\d{2})?)?/g;

/**
 * A session's text with what legitimately varies between two runs replaced: uuids the seed does
 * not fix, 64-digit hex (hashes, salts), timestamps, `Time: ... ms`, the OIDs in the names of
 * Postgres's internal foreign-key triggers and `ddl_audit id N` (both depend on how much DDL the
 * migrations ran); then runs of spaces and of table-border dashes are
 * collapsed (a value of another width re-aligns a table), and trailing spaces dropped.
 */
export function normaliseVolatile(lines: string[]): string[] {
  return lines.map((l) =>
    l
      .replace(UUID, "<uuid>")
      .replace(HASH, "<hash>")
      .replace(TIMESTAMP, "<timestamp>")
      .replace(/^Time: .*$/, "Time: <ms>")
      .replace(/\bRI_ConstraintTrigger_([ac])_\d+/g, "RI_ConstraintTrigger_$1_<oid>")
      .replace(/\bddl_audit id \d+/g, "ddl_audit id <id>")
      .replace(/-{2,}/g, "--")
      .replace(/ {2,}/g, " ")
      .trimEnd(),
  );
}

export interface SessionDifference {
  session: number;
  heading: string;
  /** 1-based line number in the committed page. */
  pageLine: number;
  expected: string;
  actual: string;
}

/**
 * The first session whose output differs between the committed page and a regenerated one, after
 * normalising what varies; null when they agree. The prose must be identical.
 */
export function firstDifference(committed: string, regenerated: string): SessionDifference | null {
  const a = parseSessions(committed);
  const b = parseSessions(regenerated);
  if (a.length !== b.length) {
    return {
      session: Math.min(a.length, b.length) + 1,
      heading: "(the number of sessions)",
      pageLine: 0,
      expected: `${a.length} sessions`,
      actual: `${b.length} sessions`,
    };
  }
  for (const [i, s] of a.entries()) {
    const x = normaliseVolatile(s.body);
    const y = normaliseVolatile(b[i].body);
    for (let j = 0; j < Math.max(x.length, y.length); j++) {
      if (x[j] !== y[j]) {
        return {
          session: i + 1,
          heading: s.heading,
          pageLine: s.open + 2 + Math.min(j, s.body.length),
          expected: s.body[j] ?? "(end of the session)",
          actual: b[i].body[j] ?? "(end of the session)",
        };
      }
    }
  }
  return null;
}

// What every `runproof` command shares: exit codes, errors that carry one, the database
// session (embedded Postgres unless DATABASE_URL, migrated on first use), and output helpers.
// Data goes to stdout (tables, or JSON with --json); progress and diagnostics go to stderr.
import { InvalidArgumentError } from "commander";
import Table from "cli-table3";
import type pg from "pg";
import { RUN_STATUSES } from "../lib/run-statuses.ts";

export const EXIT = { OK: 0, ERROR: 1, USAGE: 2, VERIFY_FAILED: 3, NOT_FOUND: 4 } as const;

export const EXIT_CODES_TABLE = `
Exit codes:
  0  ok
  1  operational error (database unreachable, unexpected failure; run --wait: the run did not succeed)
  2  usage error (unknown command or option, bad or missing argument, unreadable input file,
     input the database rejects as invalid, invalid RUNPROOF_* setting)
  3  verification failed (the proof is not VERIFIED: TAMPERED, BROKEN, IN_PROGRESS, INVALID_BUNDLE)
  4  not found (tenant, agent, run or API key)`;

export const EXIT_CODES_HELP = `${EXIT_CODES_TABLE}

Database: DATABASE_URL if set, else an embedded Postgres in .data/pg (port RUNPROOF_PG_PORT,
default 54329). A database without the RunProof schema is migrated first.`;

export const OFFLINE_HELP = `${EXIT_CODES_TABLE}

Offline: no database is used or needed (DATABASE_URL is ignored; no embedded Postgres starts).`;

/** An error that knows the process exit code it stands for. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.ERROR,
    readonly hint?: string,
  ) {
    super(message);
    this.name = "CliError";
  }
}

export const usageError = (message: string, hint?: string) => new CliError(message, EXIT.USAGE, hint);
export const notFound = (message: string, hint?: string) => new CliError(message, EXIT.NOT_FOUND, hint);

// SQLSTATEs the RunProof functions raise for input they refuse (see the migrations): a usage error.
const INVALID_INPUT_CODES = new Set([
  "RPVAL",
  "RPPLN",
  "RPSKL",
  "RPIDM",
  "RPOBL",
  "RPOLN",
  "RPOCH",
  "RPORS",
  "22P02", // invalid text representation (a malformed uuid or number)
  "23502", // not null violation
]);

/** The exit code for any error a command throws. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof CliError) return err.exitCode;
  const e = err as { code?: unknown; name?: unknown };
  if (e?.name === "ConfigError") return EXIT.USAGE;
  if (typeof e?.code === "string") {
    if (e.code === "RPNFD") return EXIT.NOT_FOUND;
    if (INVALID_INPUT_CODES.has(e.code)) return EXIT.USAGE;
  }
  return EXIT.ERROR;
}

/** What to print for an error: its message, and the database's detail and hint when there are any. */
export function describeError(err: unknown): string {
  const e = err as {
    message?: string;
    detail?: string;
    hint?: string;
    code?: string;
    address?: string;
    port?: number;
  };
  if (e?.code === "ECONNREFUSED") {
    return `cannot connect to the database at ${e.address ?? "?"}:${e.port ?? "?"} (${process.env.DATABASE_URL ? "DATABASE_URL" : "embedded Postgres"}): connection refused`;
  }
  const lines = [e?.message ?? String(err)];
  if (e?.detail) lines.push(`  detail: ${e.detail}`);
  if (e?.hint) lines.push(`  hint: ${e.hint}`);
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------
// Argument parsers (commander calls them; InvalidArgumentError becomes a usage error, exit 2)
// ---------------------------------------------------------------------------------------------

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isUuid = (v: string) => UUID_RE.test(v);

export function uuidArg(value: string): string {
  if (!isUuid(value)) throw new InvalidArgumentError(`"${value}" is not a UUID.`);
  return value.toLowerCase();
}

export function positiveIntArg(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1)
    throw new InvalidArgumentError(`"${value}" is not a positive whole number.`);
  return n;
}

export function nonNegativeIntArg(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n))
    throw new InvalidArgumentError(`"${value}" is not a whole number >= 0.`);
  return n;
}

const DURATION_UNITS: Record<string, string> = {
  s: "seconds",
  m: "minutes",
  h: "hours",
  d: "days",
  w: "weeks",
};

/** "30d", "12h", "90m", "3600s", "2w" → a Postgres interval ("30 days"). */
export function durationArg(value: string): string {
  const m = /^\s*(\d{1,9})\s*([smhdw])\s*$/i.exec(value);
  if (!m || Number(m[1]) < 1)
    throw new InvalidArgumentError(
      `"${value}" is not a duration: use a number and a unit, e.g. 30d, 12h, 90m, 3600s or 2w.`,
    );
  return `${Number(m[1])} ${DURATION_UNITS[m[2]!.toLowerCase()]}`;
}

/** An ISO 8601 date-time with a time zone ("2026-12-31T23:59:59Z"). */
export function timestampArg(value: string): string {
  const iso = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i;
  if (!iso.test(value.trim()) || Number.isNaN(Date.parse(value)))
    throw new InvalidArgumentError(
      `"${value}" is not an ISO 8601 time with a time zone, e.g. 2026-12-31T23:59:59Z.`,
    );
  return value.trim();
}

export function centsArg(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0)
    throw new InvalidArgumentError(`"${value}" is not an amount of cents >= 0.`);
  return n;
}

export { RUN_STATUSES };

export function runStatusArg(value: string): string {
  if (!(RUN_STATUSES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`"${value}" is not a run status (${RUN_STATUSES.join(", ")}).`);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

export const out = (text = "") => process.stdout.write(`${text}\n`);
export const err = (text = "") => process.stderr.write(`${text}\n`);

/** JSON with dates as ISO strings and bytea as hex. */
export function toJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_k, v) => {
      if (v && typeof v === "object" && v.type === "Buffer" && Array.isArray(v.data))
        return Buffer.from(v.data).toString("hex");
      return v;
    },
    2,
  );
}

export const printJson = (value: unknown) => out(toJson(value));

export function table(
  head: string[],
  rows: unknown[][],
  opts: { colWidths?: (number | null)[] } = {},
): string {
  const t = new Table({
    head,
    style: { head: process.stdout.isTTY ? ["cyan"] : [], border: [], compact: true },
    ...(opts.colWidths ? { colWidths: opts.colWidths, wordWrap: true } : {}),
  });
  for (const r of rows) t.push(r.map(cell));
  return t.toString();
}

/** A two-column key/value table. */
export function kvTable(pairs: [string, unknown][]): string {
  // Long values (a reason naming two hashes) wrap instead of stretching the table.
  const wide = pairs.some(([, v]) => cell(v).length > 100);
  const t = new Table({
    style: { head: [], border: [], compact: true },
    ...(wide ? { colWidths: [Math.max(...pairs.map(([k]) => k.length)) + 2, 102], wordWrap: true } : {}),
  });
  for (const [k, v] of pairs) t.push({ [k]: cell(v) });
  return t.toString();
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (v instanceof Date) return fmtTime(v);
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/** 2026-11-21 01:08:36 (UTC). */
export function fmtTime(d: Date | string | null | undefined): string {
  if (!d) return "";
  const date = d instanceof Date ? d : new Date(d);
  return date
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, "Z");
}

export function truncate(s: string, n: number): string {
  const one = s.replace(/\s+/g, " ");
  return one.length <= n ? one : `${one.slice(0, n - 1)}…`;
}

export const fmtMs = (ms: number | string | null | undefined) =>
  ms === null || ms === undefined ? "" : `${Number(ms).toFixed(1)} ms`;
export const fmtCents = (c: number | string | null | undefined) =>
  c === null || c === undefined ? "" : `${Number(c).toFixed(4)}¢`;

// ---------------------------------------------------------------------------------------------
// Database session
// ---------------------------------------------------------------------------------------------

export interface Session {
  /** Owner (or superuser) connection string of the RunProof database. */
  url: string;
  embedded: boolean;
  /** The owner's pool (the CLI is a DBA tool: it acts as the owner, not as a tenant). */
  pool: pg.Pool;
}

/**
 * Opens the database every command uses (resolveDatabase: embedded unless DATABASE_URL),
 * migrates it if the RunProof schema is missing or behind the committed migrations, runs fn
 * and closes everything again (the embedded server too, unless another process owns it).
 */
export async function withDatabase<T>(
  fn: (s: Session) => Promise<T>,
  opts: { skills?: boolean; migrate?: "if-needed" | "always" } = {},
): Promise<T> {
  const { resolveDatabase } = await import("../lib/database.ts");
  const { default: pg } = await import("pg");
  const db = await resolveDatabase({ log: (m) => err(`runproof: ${m}`) });
  const pool = new pg.Pool({ connectionString: db.url, max: 4 });
  pool.on("error", () => {}); // an idle client's failure surfaces through the next query
  try {
    if (opts.migrate === "always") {
      const { migrateDatabase } = await import("../lib/migrate.ts");
      await migrateDatabase(db.url);
    } else {
      await ensureSchema(pool, db.url);
    }
    if (opts.skills) await ensureSkills(pool);
    return await fn({ url: db.url, embedded: db.embedded, pool });
  } finally {
    await pool.end().catch(() => {});
    await db.stop();
  }
}

/** The hash of the newest committed migration (its `--! Hash:` header). */
async function latestCommittedHash(): Promise<string | null> {
  const fs = await import("node:fs/promises");
  const path = await import("node:path");
  // Not MIGRATIONS_FOLDER from lib/migrate.ts: importing that loads graphile-migrate and graphile-worker.
  const { REPO_ROOT } = await import("../lib/database.ts");
  const dir = path.join(REPO_ROOT, "migrations", "committed");
  const files = (await fs.readdir(dir)).filter((f) => f.endsWith(".sql")).sort();
  if (!files.length) return null;
  const text = await fs.readFile(path.join(dir, files[files.length - 1]), "utf8");
  return /^--! Hash: (\S+)/m.exec(text)?.[1] ?? null;
}

/** Quick check: is the newest committed migration applied? If not, migrate now. */
export async function ensureSchema(pool: pg.Pool, url: string): Promise<void> {
  const latest = await latestCommittedHash();
  const {
    rows: [r],
  } = await pool.query<{ has_log: boolean; has_schema: boolean }>(
    `select to_regclass('graphile_migrate.migrations') is not null as has_log,
            to_regprocedure('runproof.enqueue_run(uuid,uuid,text,text,jsonb,text,integer)') is not null as has_schema`,
  );
  if (r.has_log && r.has_schema) {
    if (!latest) return;
    const { rowCount } = await pool.query(`select 1 from graphile_migrate.migrations where hash = $1`, [
      latest,
    ]);
    if (rowCount) return;
  }
  err(
    `runproof: ${r.has_schema ? "the database is behind the committed migrations" : "no RunProof schema in this database"}; migrating first`,
  );
  const { DDL_AUDIT_LOSS, migrateDatabase } = await import("../lib/migrate.ts");
  const result = await migrateDatabase(url);
  if (result.ddlAudit.state === "NOT_INSTALLED")
    err(`runproof: DDL audit not installed (${result.role} is not a superuser): ${DDL_AUDIT_LOSS}`);
}

/**
 * Makes sure the built-in skills are in runproof.skills, as a worker of this version would
 * register them (plans and allowed_skills are checked against that table). Only when one is
 * missing: skills a DBA disabled stay disabled.
 */
export async function ensureSkills(pool: pg.Pool): Promise<void> {
  const { builtinSkills, registerSkillsInDatabase, SkillRegistry } = await import("../skills/registry.ts");
  const registry = new SkillRegistry(builtinSkills());
  const {
    rows: [r],
  } = await pool.query<{ missing: number }>(
    `select count(*)::int as missing from unnest($1::text[]) n where not exists (select 1 from runproof.skills s where s.name = n)`,
    [registry.names()],
  );
  if (r.missing > 0) await registerSkillsInDatabase(pool, registry);
}

/** Fails with "not found" (exit 4) unless the tenant exists. */
export async function requireTenant(pool: pg.Pool, tenantId: string): Promise<{ id: string; name: string }> {
  const {
    rows: [t],
  } = await pool.query(`select id, name from runproof.tenants where id = $1`, [tenantId]);
  if (!t) throw notFound(`tenant ${tenantId} not found`, "list tenants with: npx runproof tenant list");
  return t;
}

/**
 * The tenant of a run, found by the run's id (runs and traces are looked at, so a run whose
 * row was deleted can still be proven BROKEN). With --tenant-id, that tenant is used as given.
 */
export async function tenantOfRun(pool: pg.Pool, runId: string, tenantId?: string): Promise<string> {
  if (tenantId) return tenantId;
  const { rows } = await pool.query<{ tenant_id: string }>(
    `select tenant_id from runproof.runs where id = $1 union select tenant_id from runproof.traces where run_id = $1`,
    [runId],
  );
  if (rows.length === 0) throw notFound(`run ${runId} not found`, "list runs with: npx runproof runs list");
  if (rows.length > 1) {
    throw usageError(
      `run id ${runId} appears under ${rows.length} tenants`,
      `pass --tenant-id (one of ${rows.map((r) => r.tenant_id).join(", ")})`,
    );
  }
  return rows[0].tenant_id;
}

/**
 * Resolves after SIGINT or SIGTERM (the name of the signal). The handlers stay installed, so a
 * repeated signal (npm passes the terminal's Ctrl-C on a second time) does not cut the caller's
 * shutdown short; the process exits once the caller has stopped everything.
 */
export function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    process.on("SIGINT", resolve);
    process.on("SIGTERM", resolve);
  });
}

// npx runproof sql | psql: the database the other commands use (embedded unless DATABASE_URL), for a
// quick SQL statement without installing psql, or psql itself with the right connection string.
import { spawn } from "node:child_process";
import type { QueryResult } from "pg";
import { CliError, err, EXIT, kvTable, out, printJson, table, withDatabase } from "./common.ts";

/** With a statement: runs it as the database owner and prints the rows. Without: prints a psql command line. */
export async function sqlCommand(statement: string | undefined, opts: { json?: boolean }): Promise<void> {
  await withDatabase(async ({ pool, url, embedded }) => {
    if (statement === undefined) {
      if (opts.json) return printJson({ database_url: url, embedded });
      out(`psql "${url}"`);
      if (embedded)
        err(
          "runproof: the embedded Postgres is up while npm start (or another runproof command) runs; npx runproof psql keeps it up for as long as psql runs",
        );
      return;
    }
    // Simple protocol: several statements may be given; the rows of the last one are printed.
    const results: QueryResult | QueryResult[] = await pool.query(statement);
    const last = (Array.isArray(results) ? results : [results]).at(-1)!;
    if (opts.json)
      return printJson(last.fields.length ? last.rows : { command: last.command, rowCount: last.rowCount });
    if (!last.fields.length)
      return out(`${last.command}${last.rowCount === null ? "" : ` ${last.rowCount}`}`);
    const names: string[] = last.fields.map((f: { name: string }) => f.name);
    if (last.rows.length === 1 && names.length > 4) {
      out(kvTable(names.map((n) => [n, last.rows[0][n]])));
    } else {
      out(
        table(
          names,
          last.rows.map((r: Record<string, unknown>) => names.map((n) => r[n])),
        ),
      );
    }
    err(`(${last.rows.length} row${last.rows.length === 1 ? "" : "s"})`);
  });
}

/** psql on the database, with any further arguments; the embedded Postgres stays up while it runs. */
export async function psqlCommand(args: string[]): Promise<void> {
  await withDatabase(async ({ url }) => {
    // Ctrl-C belongs to psql (it cancels the query) while it runs, not to this process.
    const ignore = () => {};
    process.on("SIGINT", ignore);
    try {
      const code = await new Promise<number>((resolve, reject) => {
        const child = spawn("psql", [url, ...args], { stdio: "inherit" });
        child.on("error", (e: NodeJS.ErrnoException) =>
          reject(
            e.code === "ENOENT"
              ? new CliError(
                  "psql is not installed",
                  EXIT.ERROR,
                  'run SQL without it: npx runproof sql "select ...", or install the PostgreSQL client (e.g. apt-get install postgresql-client)',
                )
              : e,
          ),
        );
        child.on("exit", (c) => resolve(c ?? EXIT.ERROR));
      });
      process.exitCode = code;
    } finally {
      process.off("SIGINT", ignore);
    }
  });
}

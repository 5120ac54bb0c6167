// `npm run pg-cluster -- start|stop`: a PostgreSQL cluster from a given bin directory, to run the
// suite against another major version (docs/reliability.md, "On PostgreSQL 14 to 17"):
//
//   npm run pg-cluster -- start --bin /usr/lib/postgresql/15/bin --data /tmp/pg15 --port 55400
//   TEST_DATABASE_URL=<the printed URL> RUNPROOF_TEST_PG_BIN=/usr/lib/postgresql/15/bin npm test
//   npm run pg-cluster -- stop --bin /usr/lib/postgresql/15/bin --data /tmp/pg15
//
// The bin directory defaults to RUNPROOF_TEST_PG_BIN, else the embedded PostgreSQL 18.
import { Command } from "commander";
import { startCluster, testPgBin } from "./helpers/pg-cluster.ts";

const program = new Command("pg-cluster").description("a throwaway PostgreSQL cluster for the test suite");

program
  .command("start")
  .description("initdb (when the data directory is empty) and start the server; prints its superuser URL")
  .option("--bin <dir>", "the server's bin directory (initdb, pg_ctl, postgres)", testPgBin())
  .requiredOption("--data <dir>", "the data directory")
  .option("--port <port>", "the port (default: a free one)", (v) => Number(v))
  .action(async (opts: { bin: string; data: string; port?: number }) => {
    const cluster = await startCluster({ binDir: opts.bin, dataDir: opts.data, port: opts.port });
    process.stdout.write(`${cluster.rootUrl}\n`);
    process.stderr.write(
      `started ${opts.bin} on port ${cluster.port} (data ${cluster.dataDir}); run the suite with\n` +
        `  TEST_DATABASE_URL=${cluster.rootUrl} RUNPROOF_TEST_PG_BIN=${opts.bin} npm test\n`,
    );
  });

program
  .command("stop")
  .description("stop the server of a data directory (fast shutdown)")
  .option("--bin <dir>", "the server's bin directory", testPgBin())
  .requiredOption("--data <dir>", "the data directory")
  .action(async (opts: { bin: string; data: string }) => {
    const { execFileSync } = await import("node:child_process");
    const path = await import("node:path");
    const asPostgres = process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--"] : [];
    const [file, ...args] = [
      ...asPostgres,
      path.join(opts.bin, "pg_ctl"),
      "stop",
      "-w",
      "-m",
      "fast",
      "-D",
      opts.data,
    ];
    execFileSync(file!, args, { stdio: "inherit" });
  });

await program.parseAsync();

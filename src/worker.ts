// The worker process: loads and registers its skills before it takes any job, runs
// graphile-worker with one task per file in tasks/, and keeps crashed workers from holding
// jobs: a heartbeat marks this process alive, and a sweeper force-unlocks the jobs of
// workers whose heartbeat went stale, so their runs resume elsewhere within seconds.
import { randomUUID } from "node:crypto";
import os from "node:os";
import { Logger as WorkerLogger, run, type Runner } from "graphile-worker";
import pg from "pg";
import { Announcer } from "./lib/announcer.ts";
import type { Config } from "./lib/config.ts";
import { createLogger, type Logger } from "./lib/log.ts";
import { isConnectionLost, type WorkerContext } from "./lib/worker-context.ts";
import { builtinSkills, registerSkillsInDatabase, SkillRegistry } from "./skills/registry.ts";
import type { Skill } from "./skills/types.ts";
import { createExecuteRunTask } from "../tasks/execute_run.ts";
import { createPlanRunTask } from "../tasks/plan_run.ts";
import { createEraseExpiredPayloadsTask } from "../tasks/erase_expired_payloads.ts";
import { createCheckpointTask } from "../tasks/checkpoint.ts";

export interface WorkerHandle {
  processId: string;
  registry: SkillRegistry;
  runner: Runner;
  stop(): Promise<void>;
}

export interface WorkerOptions {
  connectionString: string;
  config: Config;
  concurrency?: number;
  logger?: Logger;
  /** Extra skills (tests add failing or slow ones); the built-in ones are always loaded. */
  skills?: Skill[];
  /** How often graphile-worker polls when LISTEN/NOTIFY is quiet (ms). */
  pollInterval?: number;
  /** On stop, how long running steps may finish before they are aborted (ms; default 5000). */
  shutdownAbortMs?: number;
}

export async function startWorker(opts: WorkerOptions): Promise<WorkerHandle> {
  const { config } = opts;
  const logger = opts.logger ?? createLogger(config, "worker");
  const concurrency = opts.concurrency ?? config.workerConcurrency;
  const pool = new pg.Pool({ connectionString: opts.connectionString, max: concurrency + 4 });
  // A lost connection must not crash the process: the job retries and crash recovery resumes the run.
  // Once the pool is ending, a connection that Postgres terminates (it is stopped right after, as
  // npm start's Ctrl-C does) is expected: debug, not an error.
  let ending = false;
  const lost = (what: string) => (e: Error) =>
    ending
      ? logger.debug({ err: e.message }, `${what} ended while stopping`)
      : logger.error({ err: e.message }, what);
  pool.on("error", lost("idle database connection failed"));
  pool.on("connect", (client) => client.on("error", lost("database connection failed")));
  retryConnectWhileDatabaseIsDown(pool, logger);
  const processId = `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;

  // Skills first: a plan may only name registered skills, and this worker must know them all.
  const registry = new SkillRegistry([...builtinSkills(), ...(opts.skills ?? [])]);
  await registerSkillsInDatabase(pool, registry);

  const known = new Set<string>();
  const heartbeat = async (workerIds: string[] = []) => {
    await pool.query(`select runproof_private.worker_heartbeat($1, $2, $3, $4)`, [
      processId,
      workerIds,
      os.hostname(),
      process.pid,
    ]);
  };
  const announcer = new Announcer(opts.connectionString, logger);
  const ctx: WorkerContext = {
    pool,
    config,
    registry,
    logger,
    announcer,
    processId,
    async registerWorker(workerId) {
      if (!workerId || known.has(workerId)) return;
      known.add(workerId);
      await heartbeat([workerId]);
    },
  };

  // Recover what dead workers left before taking new work, then keep doing it.
  let stopped = false;
  let sweeping: Promise<void> = Promise.resolve();
  const sweep = () => (sweeping = stopped ? sweeping : sweepOnce());
  const sweepOnce = async () => {
    try {
      await heartbeat();
      const {
        rows: [r],
      } = await pool.query<{ ids: string[] }>(
        `select runproof_private.recover_stale_workers(make_interval(secs => $1::float8 / 1000)) as ids`,
        [config.staleWorkerMs],
      );
      if (r.ids.length)
        logger.warn({ workers: r.ids }, "unlocked the jobs of workers whose heartbeat stopped");
    } catch (e) {
      logger.error({ err: (e as Error).message }, "heartbeat or recovery sweep failed");
    }
  };
  await sweep();
  const timer = setInterval(sweep, config.heartbeatMs);
  timer.unref();

  const runner = await run({
    pgPool: pool,
    concurrency,
    noHandleSignals: true,
    pollInterval: opts.pollInterval ?? 1000,
    preset: { worker: { gracefulShutdownAbortTimeout: opts.shutdownAbortMs ?? 5000 } },
    taskList: {
      plan_run: createPlanRunTask(ctx),
      execute_run: createExecuteRunTask(ctx),
      erase_expired_payloads: createEraseExpiredPayloadsTask(ctx),
      checkpoint: createCheckpointTask(ctx),
    },
    // Periodic work; graphile-worker runs each item once per schedule across all worker processes.
    crontab: `${config.retentionSchedule} erase_expired_payloads\n${config.checkpoint.schedule} checkpoint`,
    logger: graphileLogger(logger),
  });
  logger.info({ process_id: processId, concurrency, skills: registry.names() }, "worker started");

  return {
    processId,
    registry,
    runner,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      // A sweep under way finishes before the pool ends (else it fails: "pool after calling end").
      await sweeping;
      // After a forceful runner.kill() the runner is already stopped; the rest still needs doing.
      await runner.stop().catch((e: Error) => {
        if (!/already stopped/i.test(e.message)) throw e;
      });
      // graphile-worker may still be writing job outcomes (after a kill, asynchronously).
      await runner.promise.catch(() => {});
      await pool
        .query(`delete from runproof_private.worker_heartbeats where process_id = $1`, [processId])
        .catch(() => {});
      await announcer.close();
      ending = true;
      await pool.end();
    },
  };
}

/**
 * graphile-worker completes and fails jobs without awaiting the promise, and does not retry a
 * refused connection: with the database restarting, the rejection went unhandled and killed the
 * process. Its connections come from pool.connect() (the promise form); this makes that form
 * wait for the database (backing off up to 2 s) for up to `maxWaitMs`, so a restart or a short
 * outage only delays those writes. Our own queries (pool.query) fail fast as before.
 */
export function retryConnectWhileDatabaseIsDown(pool: pg.Pool, logger: Logger, maxWaitMs = 120_000): void {
  const connect = pool.connect.bind(pool) as (cb?: unknown) => unknown;
  pool.connect = ((cb?: unknown) => {
    if (cb) return connect(cb);
    return (async () => {
      const deadline = Date.now() + maxWaitMs;
      for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
        try {
          return await (connect() as Promise<pg.PoolClient>);
        } catch (e) {
          if (!isConnectionLost(e) || Date.now() + delay > deadline) throw e;
          logger.warn(
            { err: (e as Error).message, retry_in_ms: delay },
            "database unreachable; waiting for it",
          );
          await new Promise((r) => setTimeout(r, delay));
        }
      }
    })();
  }) as typeof pool.connect;
}

/** graphile-worker's own log lines, through our pino logger (quiet unless something is wrong). */
function graphileLogger(logger: Logger): WorkerLogger {
  return new WorkerLogger((scope) => (level, message, meta) => {
    const fields = { ...scope, ...meta, component: "graphile-worker" };
    if (level === "error") logger.error(fields, message);
    else if (level === "warning") logger.warn(fields, message);
    else logger.debug(fields, message);
  });
}

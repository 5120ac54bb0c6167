// What the worker's tasks share: the owner pool, config, loaded skills, the announcer, and the
// liveness hook.
import type pg from "pg";
import { z } from "zod";
import type { SkillRegistry } from "../skills/registry.ts";
import type { Announcer } from "./announcer.ts";
import type { Config } from "./config.ts";
import type { Logger } from "./log.ts";

export interface WorkerContext {
  pool: pg.Pool;
  config: Config;
  registry: SkillRegistry;
  logger: Logger;
  /** Announces recorded steps after their commit (step transactions never NOTIFY). */
  announcer: Announcer;
  /** host:pid:random of this worker process (also in each trace's metadata). */
  processId: string;
  /** Records that this process runs graphile-worker's `workerId`, so its heartbeat covers the job. */
  registerWorker(workerId: string | null): Promise<void>;
}

export const runJobPayload = z.strictObject({ tenant_id: z.uuid(), run_id: z.uuid() });

/** Runs fn in one transaction: what it records commits together or not at all. */
export async function inTransaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query("begin");
    const out = await fn(c);
    await c.query("commit");
    return out;
  } catch (e) {
    await c.query("rollback").catch(() => {});
    throw e;
  } finally {
    c.release();
  }
}

const CONNECTION_LOST = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENOTFOUND",
  "EPIPE",
  "57P01",
  "57P02",
  "57P03",
  "08000",
  "08001",
  "08003",
  "08004",
  "08006",
]);

/** Whether an error means the database could not be reached or the connection died (not what was sent). */
export function isConnectionLost(e: unknown): boolean {
  const err = e as { code?: string; message?: string } | null;
  return (
    CONNECTION_LOST.has(err?.code ?? "") ||
    /Connection terminated|the database system is (starting up|shutting down)|Client has encountered a connection error/.test(
      err?.message ?? "",
    )
  );
}

export interface RunRow {
  tenant_id: string;
  id: string;
  agent_id: string;
  goal: string;
  plan: unknown;
  status: string;
  attempts: number;
  max_attempts: number;
  next_plan_step: number;
  /** runproof.runs_is_finished: the run reached a final status (SQL decides which those are). */
  finished: boolean;
}

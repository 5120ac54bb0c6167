// Subscription.runUpdated(runId): live progress of one run, fed by Postgres
// NOTIFY on channel runproof:run:<run id>. The database (sql/execution/notify.sql,
// record_step.sql, cancel.sql) and the worker's announcer (src/lib/announcer.ts)
// send JSON payloads with event 'run' | 'step' | 'cancel_requested';
// PostGraphile's pgSubscriber (makePgService({ pubsub: true })) LISTENs on one
// pooled connection for all subscribers.
//
// Only a tenant's own runs can be subscribed to: before LISTENing, the run is
// read under the request's role and tenant (row level security), and an
// unknown or foreign run id is refused exactly like a missing one. The first
// event is a SNAPSHOT of the run as it was when the subscription started, so a
// client that subscribes late (even after the run finished) still learns its
// state. The stream ends after the event that shows the run finished
// (succeeded, failed, halted, cancelled), so `for await` loops end too.
import { jsonParse } from "postgraphile/@dataplan/json";
import { sideEffectWithPgClientTransaction, type PgResource } from "postgraphile/@dataplan/pg";
import {
  access,
  context,
  type GrafastSubscriber,
  lambda,
  listen,
  SafeError,
  type Step,
} from "postgraphile/grafast";
import { extendSchema, gql } from "postgraphile/utils";

const SNAPSHOT_SQL = `
  select 'runproof:run:' || r.id as topic,
         json_build_object('event', 'snapshot', 'tenant_id', r.tenant_id, 'run_id', r.id, 'status', r.status,
           'attempts', r.attempts, 'next_plan_step', r.next_plan_step, 'error', r.error,
           'finished', runproof.runs_is_finished(r))::text as snapshot
    from runproof.runs r
   where r.id = $1`;

interface RunEvent {
  event: string;
  tenant_id?: string;
  run_id: string;
  [key: string]: unknown;
}

/** Whether a NOTIFY payload (or the snapshot) shows the run in a final status. */
function isFinalEvent(payload: unknown): boolean {
  try {
    const e = JSON.parse(String(payload)) as RunEvent;
    // SQL says whether the run is finished (tg_runs__notify, runs_is_finished).
    return (e.event === "run" || e.event === "snapshot") && e.finished === true;
  } catch {
    return false;
  }
}

/**
 * Wraps pgSubscriber for one run: LISTENs at once, yields the snapshot first,
 * then the run's NOTIFY payloads, and ends after the one that shows the run
 * finished. Hand-written (not an async generator) so that an unsubscribing
 * client's return() reaches the upstream iterator even while it waits for an
 * event, which releases the LISTEN.
 */
function runStreamSubscriber(upstream: GrafastSubscriber, snapshot: string): GrafastSubscriber {
  return {
    subscribe(topic) {
      const source = Promise.resolve(upstream.subscribe(topic));
      let iterator: AsyncIterator<unknown> | undefined;
      let sentSnapshot = false;
      const finishedAlready = isFinalEvent(snapshot);
      let done = false;
      const stop = async () => {
        done = true;
        iterator ??= (await source)[Symbol.asyncIterator]();
        await iterator.return?.();
      };
      const stream: AsyncIterableIterator<unknown> = {
        [Symbol.asyncIterator]() {
          return this;
        },
        async next() {
          if (done) return { done: true, value: undefined };
          if (!sentSnapshot) {
            sentSnapshot = true;
            if (finishedAlready) await stop();
            return { done: false, value: snapshot };
          }
          iterator ??= (await source)[Symbol.asyncIterator]();
          const result = await iterator.next();
          if (result.done || done) {
            done = true;
            return { done: true, value: undefined };
          }
          if (isFinalEvent(result.value)) await stop();
          return { done: false, value: result.value };
        },
        async return() {
          if (!done) await stop();
          return { done: true, value: undefined };
        },
        async throw(err) {
          if (!done) await stop();
          throw err;
        },
      };
      return stream as AsyncIterableIterator<never>;
    },
  };
}

export const RunUpdatedSubscriptionPlugin = extendSchema((build) => {
  const runs = build.input.pgRegistry.pgResources.runs as PgResource | undefined;
  if (!runs) throw new Error("RunUpdatedSubscriptionPlugin: the runproof.runs resource is missing");
  const executor = runs.executor;

  return {
    typeDefs: gql`
      """
      What happened to a run: SNAPSHOT (its state when the subscription started; always the first event),
      RUN (status, attempts or progress changed), STEP (a step was recorded), CANCEL_REQUESTED (cancelRun
      asked the worker to stop it before its next step).
      """
      enum RunUpdateEvent {
        "The run's state when the subscription started (always the first event)."
        SNAPSHOT
        "The run's status, attempts or next plan step changed."
        RUN
        "A step was recorded in the run's current trace."
        STEP
        "cancelRun asked the worker to stop the run before its next step."
        CANCEL_REQUESTED
      }

      """
      One live event about a run, from Postgres NOTIFY on channel runproof:run:<run id>. Fields that do not
      apply to the event are null; query run for the full, current row.
      """
      type RunUpdate {
        "What happened."
        event: RunUpdateEvent!
        "The run."
        runId: UUID!
        "The run's status after the event (SNAPSHOT and RUN events)."
        status: String
        "How many execution attempts the run has had (SNAPSHOT and RUN events)."
        attempts: Int
        "The index of the next plan step to execute (SNAPSHOT and RUN events)."
        nextPlanStep: Int
        "Why the run failed, halted or was cancelled (SNAPSHOT and RUN events)."
        error: String
        "The trace the step was recorded in (STEP events)."
        traceId: UUID
        "The step's position in its trace (STEP events)."
        stepIndex: Int
        "The plan step the step executed (STEP events)."
        planStep: Int
        "The skill the step called (STEP events)."
        skill: String
        "The step's status: succeeded, failed or denied (STEP events)."
        stepStatus: String
        "How long the step took, in milliseconds (STEP events)."
        durationMs: Float
        "What the step cost, in cents (STEP events)."
        costCents: Float
        "The step's step_hash, lower-case hex (STEP events)."
        stepHash: String
        "The run as it is now (read when the event is delivered, under the caller's row level security)."
        run: Run
      }

      extend type Subscription {
        """
        Live updates of one of your runs (over WebSocket, graphql-ws protocol, with the API key in the
        connection_init payload as {"Authorization": "Bearer <api key>"}). The first event is a SNAPSHOT;
        then one event per status change, recorded step or cancellation request. The subscription
        completes after the event that shows the run finished (succeeded, failed, halted or cancelled).
        A run id that is not yours is refused like an unknown one. If you cannot hold a WebSocket open,
        poll instead: query { run(id: ...) { status nextPlanStep planStepCount isFinished updatedAt } }.
        """
        runUpdated(
          "The run to follow."
          runId: UUID!
        ): RunUpdate
      }
    `,
    enums: {
      RunUpdateEvent: {
        values: { SNAPSHOT: "snapshot", RUN: "run", STEP: "step", CANCEL_REQUESTED: "cancel_requested" },
      },
    },
    objects: {
      Subscription: {
        plans: {
          runUpdated: {
            subscribePlan(_$root, fieldArgs) {
              const $runId = fieldArgs.getRaw("runId") as Step<string>;
              // Read under the request's role and tenant: RLS hides other tenants' runs.
              const $subscription = sideEffectWithPgClientTransaction(
                executor,
                $runId,
                async (client, runId) => {
                  const { rows } = await client.query<{ topic: string; snapshot: string }>({
                    text: SNAPSHOT_SQL,
                    values: [runId],
                  });
                  if (!rows[0]) {
                    throw new SafeError(`run ${runId} not found`, {
                      code: "RPNFD",
                      hint: "subscribe to one of your own runs (query runs to list them)",
                    });
                  }
                  return rows[0];
                },
              );
              const $subscriber = lambda(
                [context().get("pgSubscriber"), access($subscription, "snapshot") as Step<string>],
                ([pgSubscriber, snapshot]) =>
                  pgSubscriber ? runStreamSubscriber(pgSubscriber, snapshot) : null,
                true,
              );
              return listen($subscriber, access($subscription, "topic") as Step<string>, jsonParse);
            },
            plan($event) {
              const $tenantId = context().get("runproofTenantId");
              // Channel names are run ids; a run id is unique in practice but not by constraint
              // across tenants, so drop any event that names another tenant.
              return lambda(
                [$event as Step<RunEvent>, $tenantId as Step<string | undefined>],
                ([event, tenantId]) =>
                  !event || (event.tenant_id && event.tenant_id !== tenantId) ? null : event,
                true,
              );
            },
          },
        },
      },
      RunUpdate: {
        plans: {
          event: ($e: Step) => access($e, "event"),
          runId: ($e: Step) => access($e, "run_id"),
          status: ($e: Step) =>
            lambda(
              $e as Step<RunEvent>,
              (e) => (e.event === "step" ? null : ((e.status as string | undefined) ?? null)),
              true,
            ),
          attempts: ($e: Step) => access($e, "attempts"),
          nextPlanStep: ($e: Step) => access($e, "next_plan_step"),
          error: ($e: Step) => access($e, "error"),
          traceId: ($e: Step) => access($e, "trace_id"),
          stepIndex: ($e: Step) => access($e, "step_index"),
          planStep: ($e: Step) => access($e, "plan_step"),
          skill: ($e: Step) => access($e, "skill"),
          stepStatus: ($e: Step) =>
            lambda($e as Step<RunEvent>, (e) => (e.event === "step" ? (e.status as string) : null), true),
          durationMs: ($e: Step) => access($e, "duration_ms"),
          costCents: ($e: Step) => access($e, "cost_cents"),
          stepHash: ($e: Step) => access($e, "step_hash"),
          run: ($e: Step) => runs.get({ id: access($e, "run_id") }),
        },
      },
    },
  };
}, "RunUpdatedSubscriptionPlugin");

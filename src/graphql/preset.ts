// The PostGraphile v5 preset of RunProof's GraphQL API: what is exposed from the
// `runproof` schema, under which names, and the few hand-written additions
// (time and status conditions on runs, the runUpdated subscription).
//
// Ground rules, each enforced in more than one place:
// - Tenants read ledger rows; they never write them. Every table is read-only
//   here (defaultBehavior "-insert -update -delete", on top of the database
//   grants, which give runproof_tenant SELECT only). The only mutations are the
//   SECURITY DEFINER functions enqueue_run, create_agent, cancel_run and
//   archive_trace.
// - Only the `runproof` schema is introspected; runproof_private never appears.
// - verify_all (a DBA's whole-ledger check) and the root-level run_proof and
//   verify_trace are hidden; proofs are fields of runs and traces instead.
import type pg from "pg";
import { makePgService } from "postgraphile/adaptors/pg";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { addPgTableCondition, jsonPgSmartTags } from "postgraphile/utils";
import { listOfCodec, TYPES } from "postgraphile/@dataplan/pg";
import { DocsPlugin } from "./docs.ts";
import { makePaginationPlugin } from "./pagination.ts";
import { makeBundleFieldPlugin } from "./bundle-field.ts";
import { RunUpdatedSubscriptionPlugin } from "./subscription.ts";

// Smart tags, kept here rather than in the SQL comments (which stay plain prose for
// DBAs). Row level security limits every table below to the request's tenant.
/** Names a relation both ways: row.fieldName and referenced.foreignFieldName. */
const fk = (fieldName: string, foreignFieldName: string) => ({ tags: { fieldName, foreignFieldName } });
const hidden = { tags: { behavior: "-*" } };
// (tenant_id, ...) keys are how the database partitions tenants; a request only
// ever sees its own tenant, so lookups are by id alone (fake unique below).
const noSingle = { tags: { behavior: "-single" } };

const SmartTagsPlugin = jsonPgSmartTags(
  {
    version: 1,
    config: {
      class: {
        "runproof.tenants": {
          tags: { behavior: "-query:resource:list -query:resource:connection" },
          constraint: { tenants_pkey: noSingle, tenants_name_key: noSingle },
        },
        "runproof.agents": {
          tags: { unique: "id" },
          constraint: {
            agents_pkey: noSingle,
            agents_tenant_id_name_key: noSingle,
            agents_tenant_id_fkey: hidden,
          },
        },
        // A small global registry: filtering it needs no index.
        "runproof.skills": { attribute: { enabled: { tags: { isIndexed: true } } } },
        "runproof.runs": {
          tags: { unique: "id" },
          attribute: { root_hash: hidden, seal: hidden },
          constraint: {
            runs_pkey: noSingle,
            runs_tenant_id_fkey: hidden,
            runs_tenant_id_agent_id_fkey: fk("agent", "runs"),
          },
        },
        "runproof.traces": {
          tags: {
            unique: "id",
            behavior: "-query:resource:list -query:resource:connection",
          },
          attribute: { root_hash: hidden, seal: hidden, seal_hash: hidden },
          constraint: {
            traces_pkey: noSingle,
            traces_tenant_id_run_id_attempt_key: noSingle,
            traces_tenant_id_run_id_id_key: noSingle,
            traces_tenant_id_run_id_fkey: fk("run", "traces"),
          },
        },
        "runproof.policy_decisions": {
          tags: { behavior: "-query:resource:list -query:resource:connection" },
          constraint: {
            policy_decisions_pkey: noSingle,
            policy_decisions_tenant_id_trace_id_step_index_decision_key: noSingle,
            // The primary key (tenant_id, trace_id, step_index) serves this lookup: trace_id fixes run_id.
            policy_decisions_tenant_id_run_id_trace_id_fkey: {
              tags: { fieldName: "trace", foreignFieldName: "policyDecisions", isIndexed: true },
            },
          },
        },
        "runproof.trace_steps": {
          // No Run.steps: trace_steps has no index on run_id (steps are reached through run.traces).
          tags: { behavior: "-query:resource:list -query:resource:connection" },
          attribute: {
            prev_hash: hidden,
            step_hash: hidden,
            decision_hash: hidden,
            input_commitment: hidden,
            output_commitment: hidden,
            error_commitment: hidden,
          },
          constraint: {
            trace_steps_pkey: noSingle,
            // The primary key (tenant_id, trace_id, step_index) serves this lookup: trace_id fixes run_id.
            trace_steps_tenant_id_run_id_trace_id_fkey: {
              tags: { fieldName: "trace", foreignFieldName: "steps", isIndexed: true },
            },
            trace_steps_tenant_id_trace_id_step_index_policy_decision_fkey: {
              tags: { fieldName: "decision", behavior: "-manyRelation -singularRelation" },
            },
          },
        },
        "runproof.incidents": {
          tags: { behavior: "-query:resource:list -query:resource:connection" },
          // Incidents are only reachable through their run or trace (indexed), a handful of rows
          // each, so ordering them by time needs no index of its own.
          attribute: { created_at: { tags: { isIndexed: true } } },
          constraint: {
            incidents_pkey: noSingle,
            incidents_tenant_id_run_id_fkey: fk("run", "incidents"),
            incidents_tenant_id_run_id_trace_id_fkey: fk("trace", "incidents"),
          },
        },
        // Payloads are read through TraceStep.input, .output and .error; erasures through
        // TraceStep.erasure and Run.payloadErasures.
        "runproof.step_payloads": hidden,
        "runproof.payload_erasure_steps": hidden,
        "runproof.payload_erasures": {
          tags: { behavior: "-query:resource:list -query:resource:connection -single" },
          constraint: { payload_erasures_pkey: noSingle, payload_erasures_tenant_id_fkey: hidden },
        },
        "runproof.agent_memory": {
          tags: { behavior: "-query:resource:list -query:resource:connection" },
          constraint: {
            agent_memory_pkey: noSingle,
            agent_memory_tenant_id_agent_id_fkey: fk("agent", "memory"),
          },
        },
        // The tenant's Merkle log: a run's leaf and inclusion proof are in Run.proof; the
        // checkpoints are listed newest first, each with its anchors' receipts.
        "runproof.log_leaves": hidden,
        "runproof.log_checkpoints": {
          tags: { behavior: "-query:resource:list" },
          constraint: { log_checkpoints_pkey: noSingle },
        },
        "runproof.log_anchor_receipts": {
          tags: { behavior: "-query:resource:list -query:resource:connection" },
          constraint: {
            log_anchor_receipts_pkey: noSingle,
            log_anchor_receipts_tenant_id_tree_size_fkey: fk("checkpoint", "anchorReceipts"),
          },
        },
      },
      procedure: {
        // A DBA's check over the whole ledger; not for API keys.
        "runproof.verify_all": hidden,
        "runproof.verify_against": hidden,
        // Exposed as Tenant.logStatus (currentTenant.logStatus).
        "runproof.log_status": hidden,
        // Name each mutation's payload field after what it returns.
        "runproof.enqueue_run": { tags: { resultFieldName: "run" } },
        "runproof.cancel_run": { tags: { resultFieldName: "run" } },
        "runproof.create_agent": { tags: { resultFieldName: "agent" } },
        "runproof.archive_trace": { tags: { resultFieldName: "trace" } },
        "runproof.erase_payloads": { tags: { resultFieldName: "erasure" } },
        // Exposed as Run.proof and Trace.proof instead, where the row is already the caller's.
        "runproof.run_proof": hidden,
        "runproof.verify_trace": hidden,
      },
    },
  },
  null,
  {
    name: "RunProofSmartTagsPlugin",
    description: "RunProof: what the GraphQL API exposes, and relation names",
  },
);

/** Plain names: runs, run(id), agents, agent(id), skills, skill(name), trace(id). */
const InflectionPlugin: GraphileConfig.Plugin = {
  name: "RunProofInflectionPlugin",
  description: "RunProof: plain root field names",
  version: "1.0.0",
  inflection: {
    replace: {
      allRowsConnection(_previous, _options, resource) {
        return this.camelCase(this.pluralize(this._singularizedResourceName(resource)));
      },
      allRowsList(_previous, _options, resource) {
        return `${this.camelCase(this.pluralize(this._singularizedResourceName(resource)))}List`;
      },
      // Without Relay's global `id` there is nothing for a column named id to clash with.
      _attributeName(previous, _options, details) {
        return previous!({ ...details, skipRowId: true });
      },
      rowByUnique(previous, _options, details) {
        const { resource, unique } = details;
        const attrs = unique.attributes as readonly string[];
        if (attrs.length === 1 && (attrs[0] === "id" || attrs[0] === "name")) {
          return this.camelCase(this._singularizedResourceName(resource));
        }
        return previous!(details);
      },
    },
  },
};

/** Newest runs first; traces by attempt; steps and decisions in chain order. */
const DEFAULT_ORDER: Record<string, string[]> = {
  runs: ["CREATED_AT_DESC"],
  traces: ["ATTEMPT_ASC"],
  traceSteps: ["STEP_INDEX_ASC"],
  policyDecisions: ["STEP_INDEX_ASC"],
  incidents: ["CREATED_AT_ASC"],
  agents: ["NAME_ASC"],
  agentMemory: ["KEY_ASC"],
  skills: ["NAME_ASC"],
  logCheckpoints: ["TREE_SIZE_DESC"],
};

const DefaultOrderPlugin: GraphileConfig.Plugin = {
  name: "RunProofDefaultOrderPlugin",
  description: "RunProof: meaningful default orderBy values instead of the (tenant_id, uuid) primary key",
  version: "1.0.0",
  after: ["PgConnectionArgOrderByDefaultValuePlugin"],
  schema: {
    hooks: {
      GraphQLObjectType_fields_field_args_arg(arg, build, context) {
        const { argName, isPgFieldConnection, pgFieldResource } = context.scope;
        if (argName !== "orderBy" || !isPgFieldConnection || !pgFieldResource || pgFieldResource.parameters)
          return arg;
        const wanted = DEFAULT_ORDER[pgFieldResource.codec.name];
        if (!wanted) return arg;
        const orderByType = build.getTypeByName(
          build.inflection.orderByType(build.inflection.tableType(pgFieldResource.codec)),
        );
        if (!orderByType || !build.graphql.isEnumType(orderByType)) return arg;
        const values = wanted.map((name) => orderByType.getValue(name)?.value);
        if (values.some((v) => v === undefined)) {
          throw new Error(
            `RunProofDefaultOrderPlugin: ${orderByType.name} lacks one of ${wanted.join(", ")}`,
          );
        }
        // Replaces the primary-key default that PgConnectionArgOrderByDefaultValuePlugin set.
        return { ...arg, defaultValue: values };
      },
    },
  },
};

const textArray = listOfCodec(TYPES.text);
const runsTable = { schemaName: "runproof", tableName: "runs" };

const RunConditionPlugins: GraphileConfig.Plugin[] = [
  addPgTableCondition(
    runsTable,
    "createdFrom",
    (build) => ({
      description: "Only runs created at or after this time (inclusive).",
      type: build.getTypeByName("Datetime") as never,
    }),
    (value, { sql, sqlTableAlias, sqlValueWithCodec }) =>
      value == null
        ? null
        : sql`${sqlTableAlias}.created_at >= ${sqlValueWithCodec(value, TYPES.timestamptz)}`,
  ),
  addPgTableCondition(
    runsTable,
    "createdBefore",
    (build) => ({
      description: "Only runs created before this time (exclusive).",
      type: build.getTypeByName("Datetime") as never,
    }),
    (value, { sql, sqlTableAlias, sqlValueWithCodec }) =>
      value == null
        ? null
        : sql`${sqlTableAlias}.created_at < ${sqlValueWithCodec(value, TYPES.timestamptz)}`,
  ),
  addPgTableCondition(
    runsTable,
    "statusIn",
    (build) => ({
      description:
        "Only runs whose status is one of these (pending, planned, running, retrying, succeeded, failed, halted, cancelled).",
      type: new build.graphql.GraphQLList(new build.graphql.GraphQLNonNull(build.graphql.GraphQLString)),
    }),
    (value, { sql, sqlTableAlias, sqlValueWithCodec }) =>
      value == null ? null : sql`${sqlTableAlias}.status = any(${sqlValueWithCodec(value, textArray)})`,
  ),
];

export type RunProofPgService = ReturnType<typeof makePgService>;

/**
 * The database behind the schema: `pool` must connect as runproof_authenticator
 * (never the owner). With pubsub, a PgSubscriber LISTENs on one pooled connection
 * for subscriptions. The caller releases it (service.release()) before ending the
 * pool: PostGraphile does not release services built on a pool it was given.
 */
export function makeRunProofPgService(pool: pg.Pool, opts: { pubsub: boolean }): RunProofPgService {
  return makePgService({ pool, schemas: ["runproof"], pubsub: opts.pubsub });
}

export interface RunProofPresetOptions {
  pgService: RunProofPgService;
  /** Rows of a connection without first/last (RUNPROOF_GRAPHQL_MAX_PAGE_SIZE; default 100). */
  pageSize?: number;
  /** Extra preset parts (grafserv, grafast context) added by the server. */
  extra?: GraphileConfig.Preset;
}

export function makeRunProofPreset(opts: RunProofPresetOptions): GraphileConfig.Preset {
  return {
    extends: [PostGraphileAmberPreset, ...(opts.extra ? [opts.extra] : [])],
    // No Relay global object identification: ids are the ledger's UUIDs.
    disablePlugins: [
      "NodePlugin",
      "AddNodeInterfaceToSuitableTypesPlugin",
      "NodeAccessorPlugin",
      "PgTableNodePlugin",
      "PgNodeIdAttributesPlugin",
      "QueryQueryPlugin",
      // Payloads return the row; an edge of an arbitrary connection adds nothing.
      "PgMutationPayloadEdgePlugin",
    ],
    plugins: [
      SmartTagsPlugin,
      InflectionPlugin,
      DefaultOrderPlugin,
      ...RunConditionPlugins,
      RunUpdatedSubscriptionPlugin,
      makeBundleFieldPlugin(() => opts.pgService.adaptorSettings!.pool as pg.Pool),
      DocsPlugin,
      makePaginationPlugin(opts.pageSize ?? 100),
    ],
    pgServices: [opts.pgService],
    schema: {
      // The ledger is read-only over GraphQL whatever the grants say.
      defaultBehavior: "-insert -update -delete",
      // A naming conflict must fail the build, not silently drop a type.
      dontSwallowErrors: true,
    },
  };
}

// Descriptions for the parts of the schema that SQL comments cannot reach.
//
// Types, columns, computed columns and functions are documented by the
// migrations' COMMENTs, which PostGraphile turns into descriptions. Postgres
// has no comments for function arguments, so each mutation input field takes
// the comment of the column of the same name in the table the function returns
// (enqueue_run(goal, ...) → runs.goal), with a few overrides below where the
// argument means more than the column. The rest (orderBy values, lookup
// arguments, payload fields) are generated here. A test asserts that nothing
// in the schema is left undocumented.
const TENANT_ARG =
  "Leave this out over GraphQL: the API key decides the tenant. Another tenant's id is refused (SQLSTATE 42501). (SQL callers without an API key pass it.)";

/** Mutation input type → the table whose column comments document its fields. */
const INPUT_TABLE: Record<string, string> = {
  EnqueueRunInput: "runs",
  CreateAgentInput: "agents",
  CancelRunInput: "runs",
  ArchiveTraceInput: "traces",
};

const FIELD_DOCS: Record<string, string> = {
  "EnqueueRunInput.tenantId": TENANT_ARG,
  "EnqueueRunInput.agentId":
    "The agent that makes the run: one of your agents (create one with createAgent).",
  "EnqueueRunInput.originSystemId":
    "Required: the identifier of the system creating the run, e.g. 'graphql' or your service's name. Blank, over-long (> 128) and reserved placeholder values ('legacy-migration', 'unknown', 'default', ...) are rejected (RPOBL, RPOLN, RPORS).",
  "EnqueueRunInput.plan":
    'The plan, {"version": 1, "steps": [{"skill": "noop", "input": {...}}]}, naming only registered skills (query skills). Leave it out to have the planner make one from the goal.',
  "EnqueueRunInput.maxAttempts":
    "How many attempts the run may make before a transient failure fails it: 1 to 20, default 3.",
  "EnqueueRunInput.idempotencyKey":
    "Optional: a stable id of this request. Enqueueing the same key again returns the same run instead of a new one.",
  "CreateAgentInput.tenantId": TENANT_ARG,
  "CancelRunInput.tenantId": TENANT_ARG,
  "CancelRunInput.runId": "The run to cancel (one of yours).",
  "CancelRunInput.reason":
    "Why it is cancelled; recorded as the run's error. Defaults to 'cancelled by request'.",
  "ArchiveTraceInput.tenantId": TENANT_ARG,
  "ArchiveTraceInput.traceId": "The sealed trace to archive (one of yours).",
  "ErasePayloadsInput.tenantId": TENANT_ARG,
  "ErasePayloadsInput.runId":
    "Erase the step payloads of this run (one of yours). Give either runId or olderThan.",
  "ErasePayloadsInput.olderThan":
    "Erase the step payloads of your runs that finished longer ago than this, e.g. {days: 180}. Give either runId or olderThan.",
  "ErasePayloadsInput.reason":
    "Why, 1 to 2000 characters, recorded with the erasure (e.g. 'GDPR request 2026-117').",
  "EnqueueRunPayload.run": "The run, as enqueued (or the existing run, for an idempotency key used before).",
  "CancelRunPayload.run":
    "The run: cancelled, or still running with a cancellation request if a worker is executing it.",
  "CreateAgentPayload.agent": "The new agent.",
  "ArchiveTracePayload.trace": "The archived trace.",
  "ErasePayloadsPayload.erasure":
    "The erasure: who, when, why and how many steps' payloads it erased. Every proof stays VERIFIED and counts the erased steps.",
};

const ARG_DOCS: Record<string, string> = {
  "Query.run(id)": "The run's id.",
  "Query.agent(id)": "The agent's id.",
  "Query.trace(id)": "The trace's id.",
  "Query.skill(name)": "The skill's name, as plans use it.",
  "Query.logInclusionProof(tenantId)": TENANT_ARG,
  "Query.logInclusionProof(leafIndex)": "The leaf (Run.proof.leafIndex) whose inclusion to prove.",
  "Query.logInclusionProof(treeSize)": "The size of the tree to prove it in: a checkpoint's treeSize.",
  "Query.logConsistencyProof(tenantId)": TENANT_ARG,
  "Query.logConsistencyProof(fromSize)": "The older checkpoint's treeSize (one you kept).",
  "Query.logConsistencyProof(toSize)": "The newer checkpoint's treeSize.",
};

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function humanize(enumValue: string): string {
  return enumValue.toLowerCase().replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
}

export const DocsPlugin: GraphileConfig.Plugin = {
  name: "RunProofDocsPlugin",
  description: "RunProof: descriptions for mutation inputs, lookup arguments and orderBy values",
  version: "1.0.0",
  schema: {
    hooks: {
      GraphQLInputObjectType_fields_field(field, build, context) {
        if (field.description) return field;
        const typeName = context.Self.name;
        const { fieldName } = context.scope;
        const explicit = FIELD_DOCS[`${typeName}.${fieldName}`];
        if (explicit) return { ...field, description: explicit };
        const table = INPUT_TABLE[typeName];
        const codec = table ? build.input.pgRegistry.pgCodecs[table] : undefined;
        const fromColumn = codec?.attributes?.[snake(fieldName)]?.description;
        return fromColumn ? { ...field, description: fromColumn } : field;
      },
      GraphQLObjectType_fields_field(field, _build, context) {
        if (field.description) return field;
        const doc = FIELD_DOCS[`${context.Self.name}.${context.scope.fieldName}`];
        return doc ? { ...field, description: doc } : field;
      },
      GraphQLObjectType_fields_field_args_arg(arg, _build, context) {
        if (arg.description) return arg;
        const doc = ARG_DOCS[`${context.Self.name}.${context.scope.fieldName}(${context.scope.argName})`];
        return doc ? { ...arg, description: doc } : arg;
      },
      GraphQLEnumType_values_value(value, _build, context) {
        if (value.description || !(context.scope as { isPgRowSortEnum?: boolean }).isPgRowSortEnum)
          return value;
        const name = context.scope.valueName;
        let description: string;
        if (name === "NATURAL") description = "No particular order: rows as the database returns them.";
        else if (name === "PRIMARY_KEY_ASC") description = "By the primary key, ascending.";
        else if (name === "PRIMARY_KEY_DESC") description = "By the primary key, descending.";
        else {
          const m = /^(.*)_(ASC|DESC)$/.exec(name);
          description = m
            ? `By ${humanize(m[1]!)}, ${m[2] === "ASC" ? "ascending" : "descending"}.`
            : `Ordered by ${humanize(name)}.`;
        }
        return { ...value, description };
      },
    },
  },
};

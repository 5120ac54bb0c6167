// What the GraphQL schema exposes, asked of the running server by introspection:
// ledger tables are read-only (no insert/update/delete mutations at all), the only
// mutations are the four SQL functions, nothing from runproof_private or verify_all
// is reachable, and every type, field, argument and enum value is documented.
import test from "ava";
import { createTestDatabase, type TestDatabase } from "./helpers/db.ts";
import { apiTenant, gqlOk, startTestServer, type ApiTenant, type TestServer } from "./helpers/graphql.ts";

let db: TestDatabase;
let server: TestServer;
let a: ApiTenant;

interface IntrospectedField {
  name: string;
  description: string | null;
  args?: Array<{ name: string; description: string | null }>;
}
interface IntrospectedType {
  kind: string;
  name: string;
  description: string | null;
  fields: IntrospectedField[] | null;
  inputFields: IntrospectedField[] | null;
  enumValues: Array<{ name: string; description: string | null }> | null;
}
let schema: {
  queryType: { name: string };
  mutationType: { name: string } | null;
  subscriptionType: { name: string } | null;
  types: IntrospectedType[];
};

const LEDGER_TYPES = [
  "Run",
  "Trace",
  "TraceStep",
  "PolicyDecision",
  "Incident",
  "Agent",
  "Tenant",
  "Skill",
  "AgentMemory",
];

test.before(async () => {
  db = await createTestDatabase("graphql-introspection");
  server = await startTestServer(db.url);
  a = await apiTenant(db.pool);
  const data = await gqlOk(
    server.url,
    a.apiKey,
    `{
    __schema {
      queryType { name } mutationType { name } subscriptionType { name }
      types {
        kind name description
        fields(includeDeprecated: true) { name description args { name description } }
        inputFields { name description }
        enumValues(includeDeprecated: true) { name description }
      }
    }
  }`,
  );
  schema = data.__schema;
});
test.after.always(async () => {
  await server?.stop();
  await db?.drop();
});

const type = (name: string) => schema.types.find((x) => x.name === name);
const fieldNames = (name: string) => (type(name)?.fields ?? []).map((f) => f.name).sort();

test("the only mutations are the five SQL functions", (t) => {
  t.deepEqual(fieldNames(schema.mutationType!.name), [
    "archiveTrace",
    "cancelRun",
    "createAgent",
    "enqueueRun",
    "erasePayloads",
  ]);
});

test("no ledger table has an insert, update or delete mutation or input type", (t) => {
  const mutations = fieldNames(schema.mutationType!.name);
  for (const table of LEDGER_TYPES) {
    t.true(type(table) !== undefined, `${table} is exposed for reading`);
    for (const verb of ["create", "update", "delete", "upsert"]) {
      const generated = mutations.filter(
        (m) =>
          m.startsWith(`${verb}${table}`) && !(verb === "create" && table === "Agent" && m === "createAgent"),
      );
      t.deepEqual(generated, [], `${verb} mutations for ${table}`);
    }
    for (const suffix of ["Input", "Patch"]) {
      t.is(type(`${table}${suffix}`), undefined, `${table}${suffix} must not exist`);
    }
  }
  t.false(
    schema.types.some((x) =>
      /^(Create|Update|Delete)(Run|Trace|TraceStep|PolicyDecision|Incident|Tenant|Skill|AgentMemory)(Input|Payload)$/.test(
        x.name,
      ),
    ),
  );
  // createAgent is the create_agent function (SECURITY DEFINER), not a table insert: its input has the function's arguments.
  t.deepEqual((type("CreateAgentInput")?.inputFields ?? []).map((f) => f.name).sort(), [
    "allowedSkills",
    "clientMutationId",
    "description",
    "name",
    "tenantId",
  ]);
});

test("queries: runs, run, agents, agent, skills, skill, trace, currentTenant, the log's checkpoints and proofs, and nothing private", (t) => {
  t.deepEqual(fieldNames(schema.queryType.name), [
    "agent",
    "agents",
    "currentTenant",
    "logCheckpoints",
    "logConsistencyProof",
    "logInclusionProof",
    "run",
    "runs",
    "skill",
    "skills",
    "trace",
  ]);
  const everything = JSON.stringify(schema).toLowerCase();
  for (const hidden of [
    "verifyall",
    "apikey",
    "keyhash",
    "authenticate",
    "runstatustransition",
    "cancelrequest",
    "workerheartbeat",
    "tenantdailyspend",
    "guarddescription",
  ]) {
    t.false(everything.includes(hidden), `${hidden} must not be exposed`);
  }
  // Proofs are fields of runs and traces, not root functions that take a tenant id.
  t.false(fieldNames("Query").includes("runProof"));
  t.false(fieldNames("Query").includes("verifyTrace"));
  t.true(fieldNames("Run").includes("proof"));
  t.true(fieldNames("Trace").includes("proof"));
});

test("a run exposes its plan, traces, steps, proof and polling fields", (t) => {
  const run = fieldNames("Run");
  for (const f of [
    "plan",
    "traces",
    "proof",
    "status",
    "nextPlanStep",
    "planStepCount",
    "isFinished",
    "updatedAt",
    "rootHash",
    "incidents",
  ]) {
    t.true(run.includes(f), `Run.${f}`);
  }
  t.true(fieldNames("Trace").includes("steps"));
  for (const f of ["prevHash", "stepHash", "decision"])
    t.true(fieldNames("TraceStep").includes(f), `TraceStep.${f}`);
  t.deepEqual(fieldNames("Subscription"), ["runUpdated"]);
});

test("every type, field, argument and enum value has a description", (t) => {
  const missing: string[] = [];
  for (const ty of schema.types) {
    if (ty.name.startsWith("__")) continue;
    if (!ty.description) missing.push(ty.name);
    for (const f of [...(ty.fields ?? []), ...(ty.inputFields ?? [])]) {
      if (!f.description) missing.push(`${ty.name}.${f.name}`);
      for (const arg of f.args ?? []) if (!arg.description) missing.push(`${ty.name}.${f.name}(${arg.name})`);
    }
    for (const v of ty.enumValues ?? []) if (!v.description) missing.push(`${ty.name}.${v.name}`);
  }
  t.deepEqual(missing, []);
});

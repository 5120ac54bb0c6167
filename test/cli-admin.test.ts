// Tenants, API keys, agents and skills from the command line, checked against the rows.
import test from "ava";
import { cliJson, runCli } from "./helpers/cli.ts";
import { createTestDatabase } from "./helpers/db.ts";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let env: Record<string, string>;
test.before(async () => {
  db = await createTestDatabase("cli-admin");
  env = { DATABASE_URL: db.url };
});
test.after.always(async () => db?.drop());

const UNKNOWN = "00000000-0000-4000-8000-000000000000";

test.serial("tenant create and list", async (t) => {
  const created = await cliJson(["tenant", "create", "acme", "--budget-cents", "2500"], { env });
  t.like(created, { name: "acme", daily_budget_cents: 2500 });
  const {
    rows: [row],
  } = await db.pool.query(
    `select name, daily_budget_cents::float8 as b from runproof.tenants where id = $1`,
    [created.id],
  );
  t.deepEqual(row, { name: "acme", b: 2500 });

  const text = await runCli(["tenant", "create", "globex"], { env });
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, /created tenant globex/);
  t.regex(text.stdout, /daily budget\s+│ 10000 cents/);

  const dup = await runCli(["tenant", "create", "acme"], { env });
  t.is(dup.code, 2, "the database rejects the input: a usage error");
  t.regex(dup.stderr, /a tenant named 'acme' already exists\n\s+hint: pick another name/);
  const blank = await runCli(["tenant", "create", "  "], { env });
  t.is(blank.code, 2);
  t.regex(blank.stderr, /tenant name must not be blank/);

  const list = await cliJson(["tenant", "list"], { env });
  t.deepEqual(
    list.map((x: any) => x.name),
    ["acme", "globex"],
  );
  t.like(list[0], { id: created.id, daily_budget_cents: 2500, agents: 0, runs: 0, active_keys: 0 });
  const table = await runCli(["tenant", "list"], { env });
  t.regex(table.stdout, new RegExp(`${created.id}\\s+│ acme\\s+│ 2500`));
});

test.serial(
  "api-key create prints the key once; list never shows it; revoke stops it authenticating",
  async (t) => {
    const tenant = await cliJson(["tenant", "create", "keys-co"], { env });
    const made = await runCli(["api-key", "create", "--tenant-id", tenant.id, "--label", "ci"], { env });
    t.is(made.code, 0, made.stderr);
    const key = made.stdout.match(/^\s+(rp_[0-9a-f]{8}_[0-9a-f]{64})$/m)?.[1];
    t.truthy(key, made.stdout);
    const {
      rows: [auth],
    } = await db.pool.query(`select runproof_private.authenticate($1) as tenant_id`, [key]);
    t.is(auth.tenant_id, tenant.id, "the printed key authenticates as its tenant");
    const { rows: stored } = await db.pool.query(
      `select key_prefix, label, key_hash = sha256(convert_to($2, 'UTF8')) as hash_ok
    from runproof_private.api_keys where tenant_id = $1`,
      [tenant.id, key],
    );
    t.deepEqual(stored, [{ key_prefix: key!.slice(0, 11), label: "ci", hash_ok: true }]);

    const second = await cliJson(["api-key", "create", "--tenant-id", tenant.id], { env });
    t.regex(second.api_key, /^rp_[0-9a-f]{8}_[0-9a-f]{64}$/);
    t.is(second.tenant_id, tenant.id);

    const list = await runCli(["api-key", "list", "--tenant-id", tenant.id], { env });
    t.is(list.code, 0);
    t.false(list.stdout.includes(key!), "never the key");
    t.false(list.stdout.includes(second.api_key));
    t.regex(list.stdout, /rp_[0-9a-f]{8}\s+│ ci/);
    const listJson = await cliJson(["api-key", "list", "--tenant-id", tenant.id], { env });
    t.deepEqual(Object.keys(listJson[0]).sort(), [
      "created_at",
      "expires_at",
      "key_id",
      "key_prefix",
      "label",
      "revoked_at",
    ]);
    t.false(JSON.stringify(listJson).includes(second.api_key.slice(12)), "nor its secret part");

    const keyId = listJson.find((k: any) => k.label === "ci").key_id;
    const revoked = await runCli(["api-key", "revoke", "--tenant-id", tenant.id, keyId], { env });
    t.is(revoked.code, 0, revoked.stderr);
    t.regex(revoked.stdout, /revoked API key rp_/);
    const err = await db.pool.query(`select runproof_private.authenticate($1)`, [key]).catch((e) => e);
    t.regex(err.message, /API key is revoked/);
    const after = await cliJson(["api-key", "list", "--tenant-id", tenant.id], { env });
    t.truthy(after.find((k: any) => k.key_id === keyId).revoked_at);
    t.is(after.find((k: any) => k.key_id === second.key_id).revoked_at, null);

    const missing = await runCli(["api-key", "revoke", "--tenant-id", tenant.id, UNKNOWN], { env });
    t.is(missing.code, 4);
    t.regex(missing.stderr, /API key .* not found/);
    const noTenant = await runCli(["api-key", "create", "--tenant-id", UNKNOWN], { env });
    t.is(noTenant.code, 4);
    t.regex(noTenant.stderr, /tenant 00000000-0000-4000-8000-000000000000 not found/);
    const noTenantList = await runCli(["api-key", "list", "--tenant-id", UNKNOWN], { env });
    t.is(noTenantList.code, 4);
  },
);

test.serial(
  "api-key create --expires-in / --expires-at: the database's clock sets the expiry; past or malformed times are refused",
  async (t) => {
    const tenant = await cliJson(["tenant", "create", "expiring-co"], { env });
    const hour = await cliJson(["api-key", "create", "--tenant-id", tenant.id, "--expires-in", "1h"], {
      env,
    });
    const {
      rows: [row],
    } = await db.pool.query(
      `select extract(epoch from expires_at - created_at)::int as secs from runproof_private.api_keys where id = $1`,
      [hour.key_id],
    );
    t.true(row.secs >= 3599 && row.secs <= 3601, String(row.secs));
    t.is(new Date(hour.expires_at).getTime() - Date.now() > 3500_000, true);
    const at = await runCli(
      ["api-key", "create", "--tenant-id", tenant.id, "--expires-at", "2099-12-31T23:59:59Z"],
      { env },
    );
    t.is(at.code, 0, at.stderr);
    t.regex(at.stdout, /expires\s+│ 2099-12-31T23:59:59\.000Z/);
    const list = await runCli(["api-key", "list", "--tenant-id", tenant.id], { env });
    t.regex(list.stdout, /expires/);
    t.regex(list.stdout, /2099-12-31/);

    const past = await runCli(
      ["api-key", "create", "--tenant-id", tenant.id, "--expires-at", "2000-01-01T00:00:00Z"],
      { env },
    );
    t.is(past.code, 2);
    t.regex(past.stderr, /API key expiry .* is not in the future\n\s+hint: pass a time after now/);
    const bad = await runCli(["api-key", "create", "--tenant-id", tenant.id, "--expires-in", "soon"], {
      env,
    });
    t.is(bad.code, 2);
    t.regex(bad.stderr, /"soon" is not a duration: use a number and a unit, e\.g\. 30d/);
    const zero = await runCli(["api-key", "create", "--tenant-id", tenant.id, "--expires-in", "0d"], { env });
    t.is(zero.code, 2);
    const both = await runCli(
      [
        "api-key",
        "create",
        "--tenant-id",
        tenant.id,
        "--expires-in",
        "1d",
        "--expires-at",
        "2099-01-01T00:00:00Z",
      ],
      { env },
    );
    t.is(both.code, 2);
    t.regex(both.stderr, /cannot be used with/);
    const noZone = await runCli(
      ["api-key", "create", "--tenant-id", tenant.id, "--expires-at", "2099-01-01 00:00"],
      { env },
    );
    t.is(noZone.code, 2);
    t.regex(noZone.stderr, /not an ISO 8601 time with a time zone/);
    const { rows: keys } = await db.pool.query(
      `select count(*)::int as n from runproof_private.api_keys where tenant_id = $1`,
      [tenant.id],
    );
    t.is(keys[0].n, 2, "only the two good keys were made");
  },
);

test.serial("agent create and list; skills list", async (t) => {
  const tenant = await cliJson(["tenant", "create", "agents-co"], { env });
  const a = await cliJson(
    [
      "agent",
      "create",
      "--tenant-id",
      tenant.id,
      "--name",
      "researcher",
      "--allowed-skills",
      "noop, wait",
      "--description",
      "reads",
    ],
    { env },
  );
  t.like(a, {
    tenant_id: tenant.id,
    name: "researcher",
    description: "reads",
    allowed_skills: ["noop", "wait"],
  });
  const b = await runCli(["agent", "create", "--tenant-id", tenant.id, "--name", "free"], { env });
  t.is(b.code, 0, b.stderr);
  t.regex(b.stdout, /allowed skills\s+│ \(every registered skill\)/);

  const unknownSkill = await runCli(
    ["agent", "create", "--tenant-id", tenant.id, "--name", "x", "--allowed-skills", "teleport"],
    { env },
  );
  t.is(unknownSkill.code, 2);
  t.regex(
    unknownSkill.stderr,
    /allowed_skills names unknown skills: teleport\n\s+hint: list skills with npx runproof skills list/,
  );
  const dup = await runCli(["agent", "create", "--tenant-id", tenant.id, "--name", "researcher"], { env });
  t.is(dup.code, 2);
  const noTenant = await runCli(["agent", "create", "--tenant-id", UNKNOWN, "--name", "x"], { env });
  t.is(noTenant.code, 4);

  const list = await cliJson(["agent", "list", "--tenant-id", tenant.id], { env });
  t.deepEqual(
    list.map((x: any) => [x.name, x.allowed_skills, x.runs]),
    [
      ["free", null, 0],
      ["researcher", ["noop", "wait"], 0],
    ],
  );
  const { rows } = await db.pool.query(
    `select name from runproof.agents where tenant_id = $1 order by name`,
    [tenant.id],
  );
  t.deepEqual(
    rows.map((r) => r.name),
    ["free", "researcher"],
  );
  t.is((await runCli(["agent", "list", "--tenant-id", UNKNOWN], { env })).code, 4);

  const skills = await runCli(["skills", "list"], { env });
  t.is(skills.code, 0);
  for (const s of ["http_call", "json_transform", "llm_complete", "memory_get", "memory_put", "noop", "wait"])
    t.regex(skills.stdout, new RegExp(`│ ${s}\\s+│ yes`));
  const skillsJson = await cliJson(["skills", "list"], { env });
  t.like(
    skillsJson.find((s: any) => s.name === "http_call"),
    { side_effects: true, enabled: true, builtin: true },
  );
});

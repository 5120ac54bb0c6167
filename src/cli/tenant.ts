// runproof tenant create | list
import { kvTable, out, printJson, table, withDatabase } from "./common.ts";

export async function tenantCreate(
  name: string,
  opts: { budgetCents?: number; json?: boolean },
): Promise<void> {
  await withDatabase(async ({ pool }) => {
    const {
      rows: [t],
    } = await pool.query(
      `select id, name, daily_budget_cents::float8 as daily_budget_cents, created_at
         from runproof_private.create_tenant($1, $2)`,
      [name, opts.budgetCents ?? 10000],
    );
    if (opts.json) return printJson(t);
    out(`created tenant ${t.name}`);
    out(
      kvTable([
        ["id", t.id],
        ["name", t.name],
        ["daily budget", `${t.daily_budget_cents} cents`],
        ["created", t.created_at],
      ]),
    );
    out(`next: npx runproof api-key create --tenant-id ${t.id}`);
    out(`      npx runproof agent create --tenant-id ${t.id} --name my-agent`);
  });
}

export async function tenantList(opts: { json?: boolean }): Promise<void> {
  await withDatabase(async ({ pool }) => {
    const { rows } = await pool.query(
      `select t.id, t.name, t.daily_budget_cents::float8 as daily_budget_cents, t.created_at,
              (select count(*)::int from runproof.agents a where a.tenant_id = t.id) as agents,
              (select count(*)::int from runproof.runs r where r.tenant_id = t.id) as runs,
              (select count(*)::int from runproof_private.api_keys k where k.tenant_id = t.id and k.revoked_at is null
                 and (k.expires_at is null or k.expires_at > now())) as active_keys
         from runproof.tenants t order by t.created_at, t.name`,
    );
    if (opts.json) return printJson(rows);
    if (!rows.length) return out("no tenants yet: npx runproof tenant create NAME");
    out(
      table(
        ["id", "name", "daily budget (¢)", "agents", "runs", "active keys", "created"],
        rows.map((t) => [t.id, t.name, t.daily_budget_cents, t.agents, t.runs, t.active_keys, t.created_at]),
      ),
    );
  });
}

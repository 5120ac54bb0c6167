// runproof agent create | list
import { kvTable, out, printJson, requireTenant, table, withDatabase } from "./common.ts";

export async function agentCreate(opts: {
  tenantId: string;
  name: string;
  description?: string;
  allowedSkills?: string;
  json?: boolean;
}): Promise<void> {
  const skills =
    opts.allowedSkills === undefined
      ? null
      : opts.allowedSkills
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean);
  await withDatabase(
    async ({ pool }) => {
      await requireTenant(pool, opts.tenantId);
      const {
        rows: [a],
      } = await pool.query(
        `select id, tenant_id, name, description, allowed_skills, created_at from runproof.create_agent($1, $2, $3, $4)`,
        [opts.name, opts.description ?? "", skills, opts.tenantId],
      );
      if (opts.json) return printJson(a);
      out(`created agent ${a.name}`);
      out(
        kvTable([
          ["id", a.id],
          ["tenant", a.tenant_id],
          ["name", a.name],
          ["allowed skills", a.allowed_skills?.join(", ") ?? "(every registered skill)"],
        ]),
      );
      out(
        `next: npx runproof run --tenant-id ${a.tenant_id} --agent ${a.name} --goal "wait 1 s, then remember color = blue" --wait`,
      );
    },
    { skills: true },
  );
}

export async function agentList(opts: { tenantId: string; json?: boolean }): Promise<void> {
  await withDatabase(async ({ pool }) => {
    await requireTenant(pool, opts.tenantId);
    const { rows } = await pool.query(
      `select a.id, a.name, a.description, a.allowed_skills, a.created_at,
              (select count(*)::int from runproof.runs r where r.tenant_id = a.tenant_id and r.agent_id = a.id) as runs
         from runproof.agents a where a.tenant_id = $1 order by a.name`,
      [opts.tenantId],
    );
    if (opts.json) return printJson(rows);
    if (!rows.length)
      return out(`no agents: npx runproof agent create --tenant-id ${opts.tenantId} --name NAME`);
    out(
      table(
        ["id", "name", "allowed skills", "runs", "created", "description"],
        rows.map((a) => [
          a.id,
          a.name,
          a.allowed_skills?.join(", ") ?? "(all)",
          a.runs,
          a.created_at,
          a.description,
        ]),
      ),
    );
  });
}

// runproof skills list: the registry as SQL sees it (plans are validated against it).
import { out, printJson, table, truncate, withDatabase } from "./common.ts";

export async function skillsList(opts: { json?: boolean }): Promise<void> {
  await withDatabase(
    async ({ pool }) => {
      const { builtinSkills } = await import("../skills/registry.ts");
      const loaded = new Set(builtinSkills().map((s) => s.name));
      const { rows } = await pool.query(
        `select name, description, side_effects, default_timeout_ms, cost_cents::float8 as cost_cents, enabled, input_schema, updated_at
         from runproof.skills order by name`,
      );
      const list = rows.map((s) => ({ ...s, builtin: loaded.has(s.name) }));
      if (opts.json) return printJson(list);
      out(
        table(
          ["skill", "enabled", "side effects", "timeout (ms)", "cost (¢)", "description"],
          list.map((s) => [
            s.name + (s.builtin ? "" : " *"),
            s.enabled ? "yes" : "no",
            s.side_effects ? "yes" : "no",
            s.default_timeout_ms,
            s.cost_cents,
            truncate(s.description, 70),
          ]),
        ),
      );
      if (list.some((s) => !s.builtin))
        out("* not built into this version of runproof (registered by another worker)");
    },
    { skills: true },
  );
}

// A readable snapshot of what a RunProof database's schema says: every function, trigger (and
// whether it is enabled), view, policy, grant, comment, constraint, index, column, type, event
// trigger and rule-table row, keyed by a stable name (no OIDs), so two databases, or one database
// before and after re-applying sql/, can be compared object by object. Used by the drift test and
// `npm run catalog:diff`.
import type pg from "pg";

export const SCHEMAS = ["runproof", "runproof_private"];

/** Tables whose rows are rules, defined in sql/ like functions (compared row by row). */
export const RULE_TABLES = ["runproof_private.guard_descriptions", "runproof_private.run_status_transitions"];

/** The kinds of object a snapshot holds; sql/ defines all but the "structure" ones. */
export type Kind =
  | "schema"
  | "role"
  | "default acl"
  | "relation"
  | "column"
  | "constraint"
  | "index"
  | "function"
  | "trigger"
  | "event trigger"
  | "policy"
  | "view"
  | "rule row";

export type Snapshot = Map<string, string>; // "<kind> <identity>" -> definition

// One query per kind; each returns (k, v). ACLs are exploded and sorted so that the order in which
// grants were made does not matter, only what they add up to; a NULL ACL (never granted or
// revoked) is read as the default it stands for.
const acl = (col: string) => `(select coalesce(string_agg(format('%s=%s%s by %s',
      case a.grantee when 0 then 'PUBLIC' else pg_get_userbyid(a.grantee) end, a.privilege_type,
      case when a.is_grantable then '*' else '' end, pg_get_userbyid(a.grantor)), ', ' order by 1), '')
   from aclexplode(${col}) a)`;

const QUERIES: [Kind, string][] = [
  [
    "schema",
    `select n.nspname, concat_ws(E'\\n', 'owner ' || pg_get_userbyid(n.nspowner), 'acl ' || ${acl("coalesce(n.nspacl, acldefault('n', n.nspowner))")},
            'comment ' || obj_description(n.oid, 'pg_namespace'))
       from pg_namespace n where n.nspname = any ($1)`,
  ],
  [
    "role",
    `select r.rolname, concat_ws(E'\\n', format('super %s login %s inherit %s createrole %s createdb %s bypassrls %s',
              r.rolsuper, r.rolcanlogin, r.rolinherit, r.rolcreaterole, r.rolcreatedb, r.rolbypassrls),
            'member of ' || coalesce((select string_agg(g.rolname, ', ' order by g.rolname)
              from pg_auth_members m join pg_roles g on g.oid = m.roleid where m.member = r.oid), ''))
       from pg_roles r where r.rolname like 'runproof%'`,
  ],
  [
    "default acl",
    `select format('%s in %s on %s', pg_get_userbyid(d.defaclrole), coalesce(d.defaclnamespace::regnamespace::text, 'all schemas'),
              d.defaclobjtype::text), ${acl("d.defaclacl")}
       from pg_default_acl d`,
  ],
  [
    "relation",
    `select format('%s.%s', n.nspname, c.relname), concat_ws(E'\\n', 'kind ' || c.relkind::text,
              'owner ' || pg_get_userbyid(c.relowner),
              'rls ' || c.relrowsecurity || ' force ' || c.relforcerowsecurity,
              'options ' || c.reloptions::text, 'acl ' || ${acl("coalesce(c.relacl, acldefault(case c.relkind when 'S' then 's'::\"char\" else 'r'::\"char\" end, c.relowner))")},
              'comment ' || obj_description(c.oid, 'pg_class'),
              case when c.relkind = 'S' then (select format('sequence %s %s %s %s %s %s', s.seqtypid::regtype, s.seqstart,
                 s.seqincrement, s.seqmax, s.seqmin, s.seqcycle) from pg_sequence s where s.seqrelid = c.oid) end)
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = any ($1) and c.relkind in ('r', 'p', 'v', 'm', 'c', 'S', 'f')`,
  ],
  [
    "column",
    // Position among the live columns, not attnum: a dropped column leaves a gap in attnum only.
    `select format('%s.%s.%s', n.nspname, c.relname, a.attname), concat_ws(E'\\n',
              'position ' || rank() over (partition by c.oid order by a.attnum),
              'type ' || format_type(a.atttypid, a.atttypmod), 'not null ' || a.attnotnull,
              'default ' || pg_get_expr(d.adbin, d.adrelid), 'identity ' || nullif(a.attidentity::text, ''),
              'generated ' || nullif(a.attgenerated::text, ''), 'collation ' || nullif(a.attcollation::regcollation::text, 'default'),
              'acl ' || ${acl("a.attacl")}, 'comment ' || col_description(c.oid, a.attnum))
       from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
       left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
      where n.nspname = any ($1) and c.relkind in ('r', 'p', 'v', 'm', 'c', 'f') and a.attnum > 0 and not a.attisdropped`,
  ],
  [
    "constraint",
    `select format('%s on %s.%s', co.conname, n.nspname, coalesce(c.relname, co.contypid::regtype::text)),
            concat_ws(E'\\n', pg_get_constraintdef(co.oid), 'validated ' || co.convalidated,
              'comment ' || obj_description(co.oid, 'pg_constraint'))
       from pg_constraint co join pg_namespace n on n.oid = co.connamespace
       left join pg_class c on c.oid = co.conrelid
      where n.nspname = any ($1)`,
  ],
  [
    "index",
    `select format('%s.%s', n.nspname, c.relname), concat_ws(E'\\n', pg_get_indexdef(i.indexrelid),
              'comment ' || obj_description(c.oid, 'pg_class'))
       from pg_index i join pg_class c on c.oid = i.indexrelid join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = any ($1)`,
  ],
  [
    "function",
    `select p.oid::regprocedure::text, concat_ws(E'\\n', pg_get_functiondef(p.oid),
              'owner ' || pg_get_userbyid(p.proowner), 'acl ' || ${acl("coalesce(p.proacl, acldefault('f', p.proowner))")},
              'comment ' || obj_description(p.oid, 'pg_proc'))
       from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = any ($1) and p.prokind in ('f', 'p')`,
  ],
  [
    // Triggers on our tables, and our trigger functions on other tables (graphile_migrate.migrations).
    "trigger",
    `select format('%s on %s.%s', t.tgname, n.nspname, c.relname), concat_ws(E'\\n', pg_get_triggerdef(t.oid),
              'enabled ' || t.tgenabled::text, 'comment ' || obj_description(t.oid, 'pg_trigger'))
       from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
       join pg_proc p on p.oid = t.tgfoid
      where not t.tgisinternal and (n.nspname = any ($1) or p.pronamespace::regnamespace::text = any ($1))`,
  ],
  [
    "event trigger",
    `select e.evtname, concat_ws(E'\\n', 'on ' || e.evtevent, 'tags ' || e.evttags::text,
              'function ' || e.evtfoid::regproc::text, 'enabled ' || e.evtenabled::text,
              'owner ' || pg_get_userbyid(e.evtowner), 'comment ' || obj_description(e.oid, 'pg_event_trigger'))
       from pg_event_trigger e join pg_proc p on p.oid = e.evtfoid
      where p.pronamespace::regnamespace::text = any ($1)`,
  ],
  [
    "policy",
    `select format('%s on %s.%s', po.polname, n.nspname, c.relname), concat_ws(E'\\n',
              'command ' || po.polcmd::text, 'permissive ' || po.polpermissive,
              'roles ' || (select string_agg(case r when 0 then 'PUBLIC' else pg_get_userbyid(r) end, ', ' order by 1)
                             from unnest(po.polroles) r),
              'using ' || pg_get_expr(po.polqual, po.polrelid), 'check ' || pg_get_expr(po.polwithcheck, po.polrelid),
              'comment ' || obj_description(po.oid, 'pg_policy'))
       from pg_policy po join pg_class c on c.oid = po.polrelid join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = any ($1)`,
  ],
  [
    "view",
    `select format('%s.%s', n.nspname, c.relname), pg_get_viewdef(c.oid)
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = any ($1) and c.relkind in ('v', 'm')`,
  ],
];

/** Takes a snapshot of the RunProof schemas in the database `client` is connected to. */
export async function snapshot(client: pg.ClientBase, schemas = SCHEMAS): Promise<Snapshot> {
  const out: Snapshot = new Map();
  for (const [kind, sql] of QUERIES) {
    const { rows } = await client.query<{ k: string; v: string }>(
      `select x.* from (${sql}) as x(k, v)`,
      sql.includes("$1") ? [schemas] : [],
    );
    for (const r of rows) out.set(`${kind} ${r.k}`, r.v ?? "");
  }
  for (const table of RULE_TABLES) {
    const [schema, name] = table.split(".");
    const { rows } = await client.query<{ k: string; v: string }>(
      // The first column(s) of the primary key name the row; the whole row is its definition.
      `select (select string_agg(j ->> a.attname, ' ' order by array_position(i.indkey, a.attnum))
                 from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any (i.indkey)
                where i.indrelid = to_regclass($1) and i.indisprimary) as k,
              j::text as v
         from (select to_jsonb(t) as j from ${client.escapeIdentifier(schema)}.${client.escapeIdentifier(name)} t) x`,
      [table],
    );
    for (const r of rows) out.set(`rule row ${table} ${r.k}`, r.v);
  }
  return out;
}

export interface SnapshotDiff {
  onlyInA: string[];
  onlyInB: string[];
  changed: string[];
}

export function diffSnapshots(a: Snapshot, b: Snapshot): SnapshotDiff {
  const onlyInA = [...a.keys()].filter((k) => !b.has(k)).sort();
  const onlyInB = [...b.keys()].filter((k) => !a.has(k)).sort();
  const changed = [...a.keys()].filter((k) => b.has(k) && a.get(k) !== b.get(k)).sort();
  return { onlyInA, onlyInB, changed };
}

/** How many objects of each kind a snapshot holds. */
export function countByKind(s: Snapshot): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const k of s.keys()) {
    const kind = k.startsWith("rule row ")
      ? "rule row"
      : k.startsWith("event trigger ")
        ? "event trigger"
        : k.startsWith("default acl ")
          ? "default acl"
          : k.split(" ")[0];
    counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return counts;
}

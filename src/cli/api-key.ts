// runproof api-key create | revoke | list. A key is shown once, at creation: only its SHA-256 is stored.
import { kvTable, notFound, out, printJson, requireTenant, table, withDatabase } from "./common.ts";

export async function apiKeyCreate(opts: {
  tenantId: string;
  label?: string;
  /** A Postgres interval ("30 days"), from --expires-in. */
  expiresIn?: string;
  /** An ISO 8601 time, from --expires-at. */
  expiresAt?: string;
  json?: boolean;
}): Promise<void> {
  await withDatabase(async ({ pool }) => {
    const tenant = await requireTenant(pool, opts.tenantId);
    // The database's clock decides when "in 30 days" is, and refuses a time in the past.
    const {
      rows: [k],
    } = await pool.query(
      `select key_id, api_key, key_prefix, expires_at
         from runproof_private.create_api_key($1, $2,
                coalesce($3::timestamptz, now() + $4::interval))`,
      [opts.tenantId, opts.label ?? "", opts.expiresAt ?? null, opts.expiresIn ?? null],
    );
    if (opts.json)
      return printJson({
        tenant_id: opts.tenantId,
        key_id: k.key_id,
        key_prefix: k.key_prefix,
        label: opts.label ?? "",
        expires_at: k.expires_at,
        api_key: k.api_key,
      });
    out(`API key for tenant ${tenant.name} (shown once; only its SHA-256 is stored):`);
    out();
    out(`  ${k.api_key}`);
    out();
    out(
      kvTable([
        ["key id", k.key_id],
        ["prefix", k.key_prefix],
        ["label", opts.label ?? ""],
        ["expires", k.expires_at ? k.expires_at.toISOString() : "never"],
      ]),
    );
    out(
      `use it as: Authorization: Bearer ${k.key_prefix}_…   revoke it with: npx runproof api-key revoke --tenant-id ${opts.tenantId} ${k.key_id}`,
    );
  });
}

export async function apiKeyRevoke(keyId: string, opts: { tenantId: string; json?: boolean }): Promise<void> {
  await withDatabase(async ({ pool }) => {
    await requireTenant(pool, opts.tenantId);
    const {
      rows: [k],
    } = await pool.query(
      `select id, key_prefix, label from runproof_private.api_keys where tenant_id = $1 and id = $2`,
      [opts.tenantId, keyId],
    );
    if (!k)
      throw notFound(
        `API key ${keyId} of tenant ${opts.tenantId} not found`,
        `list keys with: npx runproof api-key list --tenant-id ${opts.tenantId}`,
      );
    await pool.query(`select runproof_private.revoke_api_key($1, $2)`, [opts.tenantId, keyId]);
    const {
      rows: [r],
    } = await pool.query(
      `select id as key_id, key_prefix, label, created_at, expires_at, revoked_at from runproof_private.api_keys where tenant_id = $1 and id = $2`,
      [opts.tenantId, keyId],
    );
    if (opts.json) return printJson(r);
    out(
      `revoked API key ${r.key_prefix} (${r.key_id}) at ${r.revoked_at.toISOString()}; it authenticates nothing from now on`,
    );
  });
}

export async function apiKeyList(opts: { tenantId: string; json?: boolean }): Promise<void> {
  await withDatabase(async ({ pool }) => {
    await requireTenant(pool, opts.tenantId);
    // Never the key, nor its hash: the prefix is enough to recognise one.
    const { rows } = await pool.query(
      `select id as key_id, key_prefix, label, created_at, expires_at, revoked_at
         from runproof_private.api_keys where tenant_id = $1 order by created_at, id`,
      [opts.tenantId],
    );
    if (opts.json) return printJson(rows);
    if (!rows.length) return out(`no API keys: npx runproof api-key create --tenant-id ${opts.tenantId}`);
    out(
      table(
        ["key id", "prefix", "label", "created", "expires", "revoked"],
        rows.map((k) => [
          k.key_id,
          k.key_prefix,
          k.label,
          k.created_at,
          k.expires_at ?? "never",
          k.revoked_at ?? "-",
        ]),
      ),
    );
  });
}

// API keys → tenants. `Authorization: Bearer <api key>` is resolved by
// runproof_private.authenticate (SECURITY DEFINER, granted to
// runproof_authenticator only), which compares the key's SHA-256 with the
// stored hashes and raises 28000 for an unknown or revoked key.
//
// Successful look-ups are cached by the key's SHA-256 for a few seconds (so a
// revoked key stops working within that time); failures are never cached.
import { createHash } from "node:crypto";
import type pg from "pg";
import { findPgError } from "./errors.ts";

export const DEFAULT_AUTH_CACHE_MS = 5000;
const MAX_CACHE_ENTRIES = 10_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A request that cannot be authenticated; becomes HTTP 401 (or a subscription error). */
export class AuthError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
    this.name = "AuthError";
  }
}

export type AuthResult = { ok: true; tenantId: string } | { ok: false; error: AuthError };

export class ApiKeyAuthenticator {
  private readonly cache = new Map<string, { tenantId: string; expiresAt: number }>();
  private readonly ttlMs: number;

  constructor(
    private readonly pool: pg.Pool,
    opts: { cacheMs?: number } = {},
  ) {
    this.ttlMs = Math.max(0, Math.min(opts.cacheMs ?? DEFAULT_AUTH_CACHE_MS, DEFAULT_AUTH_CACHE_MS));
  }

  /** Resolves an Authorization header value. Throws only for unexpected (database) failures. */
  async authenticate(authorization: string | string[] | undefined): Promise<AuthResult> {
    const header = Array.isArray(authorization) ? authorization[0] : authorization;
    if (!header?.trim()) {
      return fail(
        "Authentication required",
        "send the header Authorization: Bearer <api key>; create a key with runproof api-key create",
      );
    }
    const match = /^\s*Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) {
      return fail(
        "Malformed Authorization header",
        "send the header Authorization: Bearer <api key>; create a key with runproof api-key create",
      );
    }
    const apiKey = match[1]!;
    const keyHash = createHash("sha256").update(apiKey, "utf8").digest("hex");
    const now = Date.now();
    const cached = this.cache.get(keyHash);
    if (cached && cached.expiresAt > now) return { ok: true, tenantId: cached.tenantId };
    if (cached) this.cache.delete(keyHash);

    let tenantId: string;
    try {
      const { rows } = await this.pool.query<{ tenant_id: string }>(
        "select runproof_private.authenticate($1) as tenant_id",
        [apiKey],
      );
      tenantId = rows[0]!.tenant_id;
    } catch (err) {
      const pgError = findPgError(err);
      if (pgError?.code === "28000") {
        return fail(
          capitalize(pgError.message),
          pgError.hint ?? "create a new key with runproof api-key create",
        );
      }
      throw err;
    }
    if (!UUID.test(tenantId)) throw new Error("runproof_private.authenticate returned no tenant");

    if (this.ttlMs > 0) {
      if (this.cache.size >= MAX_CACHE_ENTRIES) this.prune(now);
      this.cache.set(keyHash, { tenantId, expiresAt: now + this.ttlMs });
    }
    return { ok: true, tenantId };
  }

  private prune(now: number): void {
    for (const [k, v] of this.cache) if (v.expiresAt <= now) this.cache.delete(k);
    // Still full of live entries: start over rather than grow without bound.
    if (this.cache.size >= MAX_CACHE_ENTRIES) this.cache.clear();
  }
}

/** The message says what is wrong and what to do; the hint is only the latter. */
function fail(what: string, hint: string): AuthResult {
  return { ok: false, error: new AuthError(`${what}: ${hint}`, hint) };
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

// API keys → tenants. `Authorization: Bearer <api key>` is resolved by
// runproof_private.authenticate (SECURITY DEFINER, granted to
// runproof_authenticator only), which compares the key's SHA-256 with the
// stored hashes and raises 28000 for an unknown or revoked key (RPKEX for an
// expired one, once the database has key expiry).
//
// Successful look-ups are cached by the key's SHA-256 for `cacheMs` (at most 5 s,
// by default RUNPROOF_API_KEY_RECHECK_MS = 2 s), so a revoked key stops working
// within that time; failures are never cached. Open subscriptions are re-checked
// on the same interval without the cache (src/graphql/revocation.ts).
import { createHash } from "node:crypto";
import type pg from "pg";
import { findPgError } from "./errors.ts";

export const DEFAULT_AUTH_CACHE_MS = 2000;
export const MAX_AUTH_CACHE_MS = 5000;
const MAX_CACHE_ENTRIES = 10_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type AuthErrorCode = "UNAUTHENTICATED" | "API_KEY_EXPIRED";

/** A request that cannot be authenticated; becomes HTTP 401 (or a subscription error). */
export class AuthError extends Error {
  constructor(
    message: string,
    readonly hint: string,
    readonly code: AuthErrorCode = "UNAUTHENTICATED",
  ) {
    super(message);
    this.name = "AuthError";
  }
}

export interface AuthOk {
  ok: true;
  tenantId: string;
  /** sha256 of the key, hex: how the server refers to a key without keeping it. */
  keyHash: string;
}

export type AuthResult = AuthOk | { ok: false; error: AuthError };

/** The key in an Authorization header value, or why there is none. */
export function bearerKey(
  authorization: string | string[] | undefined,
): { key: string } | { error: AuthError } {
  const header = Array.isArray(authorization) ? authorization[0] : authorization;
  if (!header?.trim()) {
    return {
      error: failure(
        "Authentication required",
        "send the header Authorization: Bearer <api key>; create a key with npx runproof api-key create",
      ),
    };
  }
  const match = /^\s*Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) {
    return {
      error: failure(
        "Malformed Authorization header",
        "send the header Authorization: Bearer <api key>; create a key with npx runproof api-key create",
      ),
    };
  }
  return { key: match[1]! };
}

export function keyHashOf(apiKey: string): string {
  return createHash("sha256").update(apiKey, "utf8").digest("hex");
}

export class ApiKeyAuthenticator {
  private readonly cache = new Map<string, { tenantId: string; expiresAt: number }>();
  readonly ttlMs: number;

  constructor(
    private readonly pool: pg.Pool,
    opts: { cacheMs?: number } = {},
  ) {
    this.ttlMs = Math.max(0, Math.min(opts.cacheMs ?? DEFAULT_AUTH_CACHE_MS, MAX_AUTH_CACHE_MS));
  }

  /** Resolves an Authorization header value. Throws only for unexpected (database) failures. */
  async authenticate(authorization: string | string[] | undefined): Promise<AuthResult> {
    const bearer = bearerKey(authorization);
    if ("error" in bearer) return { ok: false, error: bearer.error };
    const keyHash = keyHashOf(bearer.key);
    const now = Date.now();
    const cached = this.cache.get(keyHash);
    if (cached && cached.expiresAt > now) return { ok: true, tenantId: cached.tenantId, keyHash };
    if (cached) this.cache.delete(keyHash);
    const result = await this.check(bearer.key);
    if (result.ok && this.ttlMs > 0) {
      if (this.cache.size >= MAX_CACHE_ENTRIES) this.prune(now);
      this.cache.set(keyHash, { tenantId: result.tenantId, expiresAt: now + this.ttlMs });
    }
    return result;
  }

  /** Asks the database about a key, bypassing the cache (and dropping a cached entry that failed). */
  async check(apiKey: string): Promise<AuthResult> {
    const keyHash = keyHashOf(apiKey);
    let tenantId: string;
    try {
      const { rows } = await this.pool.query<{ tenant_id: string }>(
        "select runproof_private.authenticate($1) as tenant_id",
        [apiKey],
      );
      tenantId = rows[0]!.tenant_id;
    } catch (err) {
      const pgError = findPgError(err);
      if (pgError?.code === "28000" || pgError?.code === "RPKEX") {
        this.cache.delete(keyHash);
        return {
          ok: false,
          error: failure(
            capitalize(pgError.message),
            pgError.hint ?? "create a new key with npx runproof api-key create",
            pgError.code === "RPKEX" ? "API_KEY_EXPIRED" : "UNAUTHENTICATED",
          ),
        };
      }
      throw err;
    }
    if (!UUID.test(tenantId)) throw new Error("runproof_private.authenticate returned no tenant");
    return { ok: true, tenantId, keyHash };
  }

  /** Drops cached look-ups (all, or one key's), e.g. when the database says keys were revoked. */
  forget(keyHash?: string): void {
    if (keyHash) this.cache.delete(keyHash);
    else this.cache.clear();
  }

  private prune(now: number): void {
    for (const [k, v] of this.cache) if (v.expiresAt <= now) this.cache.delete(k);
    // Still full of live entries: start over rather than grow without bound.
    if (this.cache.size >= MAX_CACHE_ENTRIES) this.cache.clear();
  }
}

/** The message says what is wrong and what to do; the hint is only the latter. */
function failure(what: string, hint: string, code: AuthErrorCode = "UNAUTHENTICATED"): AuthError {
  return new AuthError(`${what}: ${hint}`, hint, code);
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

// The GraphQL server connects as runproof_authenticator (LOGIN NOINHERIT, member of
// runproof_tenant), never as the owner: every request then SET LOCAL ROLEs to
// runproof_tenant, so row level security applies. The role is created by the
// migrations without a password; this module gives it one and returns its URL.
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import { REPO_ROOT } from "./database.ts";

export const AUTHENTICATOR_ROLE = "runproof_authenticator";
export const AUTHENTICATOR_PASSWORD_ENV = "RUNPROOF_AUTHENTICATOR_PASSWORD";
export const AUTHENTICATOR_PASSWORD_FILE = path.join(REPO_ROOT, ".data", "authenticator.password");

// 28P01 invalid_password; 28000 invalid_authorization_specification (e.g. the role
// cannot log in, or pg_hba has no password entry it could use).
const AUTH_ERROR_CODES = new Set(["28P01", "28000"]);

/**
 * Makes sure runproof_authenticator can log in with the configured password and
 * returns its connection string (same server and database as ownerUrl).
 *
 * The password comes from RUNPROOF_AUTHENTICATOR_PASSWORD, else from
 * <repo>/.data/authenticator.password (created once with a random value). If
 * the role cannot log in with it, the owner sets it (ALTER ROLE ... LOGIN
 * PASSWORD) and we try again.
 */
export async function ensureAuthenticator(
  ownerUrl: string,
  opts: { passwordFile?: string; log?: (m: string) => void } = {},
): Promise<string> {
  const password = await authenticatorPassword(opts.passwordFile);
  const url = new URL(ownerUrl);
  url.username = AUTHENTICATOR_ROLE;
  url.password = password;
  const authUrl = url.toString();

  const first = await tryConnect(authUrl);
  if (first === true) return authUrl;
  if (!AUTH_ERROR_CODES.has(first.code ?? "")) throw first;

  opts.log?.(`${AUTHENTICATOR_ROLE} cannot log in (${first.message}); setting its password`);
  const owner = new pg.Client({ connectionString: ownerUrl });
  await owner.connect();
  let setError: (Error & { code?: string }) | undefined;
  try {
    // escapeLiteral quotes the password safely; ALTER ROLE takes no bind parameters.
    await owner.query(
      `alter role ${owner.escapeIdentifier(AUTHENTICATOR_ROLE)} with login password ${owner.escapeLiteral(password)}`,
    );
  } catch (err) {
    // Parallel servers on one cluster may set the same password at the same
    // moment ("tuple concurrently updated"); the retry below settles it.
    setError = err as Error & { code?: string };
    opts.log?.(`setting the ${AUTHENTICATOR_ROLE} password failed: ${setError.message}`);
  } finally {
    await owner.end();
  }
  if (setError?.code === "42501") {
    // Denied: the owner may not change the role (no CREATEROLE, or since PostgreSQL 16 no ADMIN
    // OPTION on it). Say so, instead of retrying a password that was never set.
    const ownerRole = new URL(ownerUrl).username || "the owner";
    throw Object.assign(
      new Error(
        `cannot connect as ${AUTHENTICATOR_ROLE} (${first.message}), and ${ownerRole} may not set its password: ${setError.message}`,
        { cause: setError },
      ),
      {
        code: "42501",
        hint: `set ${AUTHENTICATOR_PASSWORD_ENV} to the password a DBA gave ${AUTHENTICATOR_ROLE} (ALTER ROLE ${AUTHENTICATOR_ROLE} LOGIN PASSWORD '...'), or give ${ownerRole} CREATEROLE and ADMIN OPTION on ${AUTHENTICATOR_ROLE}`,
      },
    );
  }

  for (let attempt = 1; ; attempt++) {
    const result = await tryConnect(authUrl);
    if (result === true) return authUrl;
    if (attempt >= 5 || !AUTH_ERROR_CODES.has(result.code ?? "")) {
      throw new Error(
        setError
          ? `cannot connect as ${AUTHENTICATOR_ROLE}, and setting its password failed (${setError.message}): ${result.message}`
          : `cannot connect as ${AUTHENTICATOR_ROLE} even after setting its password: ${result.message}`,
        { cause: result },
      );
    }
    await new Promise((r) => setTimeout(r, 100 * attempt));
  }
}

/** true when the role can connect; otherwise the connection error. */
async function tryConnect(url: string): Promise<true | (Error & { code?: string })> {
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (err) {
    return err as Error & { code?: string };
  }
  try {
    const { rows } = await client.query<{ rolsuper: boolean; rolbypassrls: boolean }>(
      "select rolsuper, rolbypassrls from pg_roles where rolname = current_user",
    );
    // Row level security is the tenant boundary: a role that bypasses it must never serve requests.
    if (rows[0]?.rolsuper || rows[0]?.rolbypassrls) {
      throw new Error(
        `${AUTHENTICATOR_ROLE} is a superuser or has BYPASSRLS; refusing to serve GraphQL as it`,
      );
    }
    return true;
  } finally {
    await client.end().catch(() => {});
  }
}

async function authenticatorPassword(file = AUTHENTICATOR_PASSWORD_FILE): Promise<string> {
  const fromEnv = process.env[AUTHENTICATOR_PASSWORD_ENV]?.trim();
  if (fromEnv) return fromEnv;
  try {
    const existing = (await fs.readFile(file, "utf8")).trim();
    if (existing) return existing;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  await fs.mkdir(path.dirname(file), { recursive: true });
  const fresh = randomBytes(24).toString("hex");
  try {
    // "wx": exactly one process creates it; the others read what it wrote.
    await fs.writeFile(file, `${fresh}\n`, { mode: 0o600, flag: "wx" });
    return fresh;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    for (let attempt = 0; attempt < 20; attempt++) {
      const existing = (await fs.readFile(file, "utf8")).trim();
      if (existing) return existing;
      await new Promise((r) => setTimeout(r, 25)); // the creator has not written it yet
    }
    throw new Error(`${file} exists but is empty; delete it to have a new password generated`);
  }
}

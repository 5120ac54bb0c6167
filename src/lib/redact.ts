// Secrets must never reach the ledger: step input and output are hashed and
// stored forever, so they are redacted before that (and before logging).
// Over-redacting loses a little audit detail; under-redacting cannot be undone.

export const REDACTED = "[REDACTED]";

/**
 * Key names whose values are secrets, matched case-insensitively against the whole key.
 * Besides the exact names (authorization, proxy-authorization, cookie, set-cookie, x-api-key,
 * api_key/apikey/api-key, token, access_token, refresh_token, id_token, password, passwd, secret,
 * client_secret, private_key) it matches any key *ending* in authorization, api key, token,
 * password/passwd, secret or private key (github_token, db_password, accessToken), but not
 * plurals such as max_tokens or total_tokens.
 * The same source works as a Postgres ARE: `key ~* SECRET_KEY_PATTERN_SOURCE`.
 */
export const SECRET_KEY_PATTERN_SOURCE =
  "^(?:.*authorization|(?:set[-_]?)?cookie|.*api[-_]?key|.*token|.*passw(?:or)?d|.*secret|.*private[-_]?key)$";
export const SECRET_KEY_PATTERN = new RegExp(SECRET_KEY_PATTERN_SOURCE, "i");

export function isSecretKey(key: string): boolean {
  return SECRET_KEY_PATTERN.test(key);
}

// token68 (RFC 7235): what follows an auth scheme.
const BEARER = /\b(Bearer)(\s+)[A-Za-z0-9\-._~+/]+=*/gi;
const BASIC = /\b(Basic)(\s+)([A-Za-z0-9+/]+=*)/gi;
// scheme://user:password@ — keep the user, drop the password.
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s:@/?#]*):([^\s@/?#]*)@/gi;
// name=value in a URL query, a form body or a log line.
const PARAM = /(^|[?&;\s])([^\s=&?#;]+)=([^\s&#;]*)/g;
// "name": "value" inside a string that holds JSON (a logged or echoed body).
const JSON_PAIR = /"((?:[^"\\]|\\.){1,200})"(\s*:\s*)"((?:[^"\\]|\\.)*)"/g;

function looksLikeBasicCredentials(token: string): boolean {
  // "Basic usage" is English; "Basic dXNlcjpwYXNz" is user:pass in base64.
  const decoded = Buffer.from(token, "base64").toString("utf8");
  return decoded.includes(":") && /^[\x20-\x7e]+$/.test(decoded);
}

export function redactString(s: string): string {
  // Cheap exit for the common case: nothing that any rule could match.
  if (!/bearer|basic|:\/\/|=|"/i.test(s)) return s;
  return s
    .replace(BEARER, (_m, scheme: string, ws: string) => `${scheme}${ws}${REDACTED}`)
    .replace(BASIC, (m, scheme: string, ws: string, token: string, offset: number, whole: string) => {
      const afterAuthHeader = /authorization\s*:\s*$/i.test(whole.slice(Math.max(0, offset - 40), offset));
      return afterAuthHeader || looksLikeBasicCredentials(token) ? `${scheme}${ws}${REDACTED}` : m;
    })
    .replace(USERINFO, (_m, scheme: string, user: string) => `${scheme}${user}:${REDACTED}@`)
    .replace(PARAM, (m, lead: string, name: string) => {
      let key = name;
      try {
        key = decodeURIComponent(name);
      } catch {
        // keep the raw name
      }
      return isSecretKey(key) ? `${lead}${name}=${REDACTED}` : m;
    })
    .replace(JSON_PAIR, (m, name: string, sep: string) =>
      isSecretKey(name) ? `"${name}"${sep}"${REDACTED}"` : m,
    );
}

/**
 * A deep copy of `value` with secrets replaced by "[REDACTED]": the value of every secret-named
 * key (see SECRET_KEY_PATTERN; whatever its type, as runproof_private.redact does), and inside
 * every string, Bearer/Basic credentials, URL passwords and secret-named query parameters.
 * Errors become plain {type, message, stack, code} objects, other objects are copied as JSON
 * would see them (toJSON, else own enumerable properties); cycles become "[Circular]".
 */
export function redact(value: unknown): unknown {
  return walk(value, new WeakSet());
}

function walk(value: unknown, seen: WeakSet<object>): unknown {
  if (typeof value === "string") return redactString(value);
  if (value === null || typeof value !== "object") return value;
  if (seen.has(value)) return "[Circular]";
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((v) => walk(v, seen));
    if (value instanceof Error) {
      const out: Record<string, unknown> = { type: value.name, message: redactString(value.message) };
      if (value.stack) out.stack = redactString(value.stack);
      const code = (value as { code?: unknown }).code;
      if (code !== undefined) out.code = code;
      if (value.cause !== undefined) out.cause = walk(value.cause, seen);
      return out;
    }
    // Whatever has a toJSON (Date, Buffer, URL) is redacted in the shape JSON would store.
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === "function") return walk(toJSON.call(value), seen);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = isSecretKey(k) && v !== undefined ? REDACTED : walk(v, seen);
    }
    return out;
  } finally {
    // Shared (non-cyclic) references are fine; only an ancestor is a cycle.
    seen.delete(value);
  }
}

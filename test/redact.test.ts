// redact(): what the ledger and the logs must never contain, and what they must keep.
import test from "ava";
import {
  redact,
  redactString,
  REDACTED,
  SECRET_KEY_PATTERN,
  SECRET_KEY_PATTERN_SOURCE,
} from "../src/lib/redact.ts";
import { createTestDatabase } from "./helpers/db.ts";

const SECRET_KEYS = [
  "authorization",
  "Authorization",
  "proxy-authorization",
  "cookie",
  "Set-Cookie",
  "x-api-key",
  "X-API-KEY",
  "api_key",
  "apikey",
  "api-key",
  "apiKey",
  "token",
  "access_token",
  "refresh_token",
  "id_token",
  "accessToken",
  "password",
  "passwd",
  "PASSWORD",
  "secret",
  "client_secret",
  "clientSecret",
  "private_key",
  "privateKey",
  "github_token",
  "db_password",
  "aws_secret",
  "x-auth-token",
];
const PLAIN_KEYS = [
  "key",
  "max_tokens",
  "total_tokens",
  "prompt_tokens",
  "tokens",
  "url",
  "name",
  "cookies_accepted",
  "author",
  "secretary",
  "password_policy",
];

test("values of secret-named keys are replaced, at any depth and whatever their type", (t) => {
  for (const k of SECRET_KEYS) t.true(SECRET_KEY_PATTERN.test(k), k);
  for (const k of PLAIN_KEYS) t.false(SECRET_KEY_PATTERN.test(k), k);
  const input = {
    url: "https://api.example.test/x",
    headers: { Authorization: "Bearer abc.def", "X-Api-Key": "k-123", Accept: "application/json" },
    body: { user: "ann", password: "hunter2", nested: [{ token: { deep: 1 } }, { client_secret: 42 }] },
    usage: { total_tokens: 1500, max_tokens: 50 },
    memory: { key: "k", value: 1 },
    password_hint: null,
  };
  t.deepEqual(redact(input), {
    url: "https://api.example.test/x",
    headers: { Authorization: REDACTED, "X-Api-Key": REDACTED, Accept: "application/json" },
    body: { user: "ann", password: REDACTED, nested: [{ token: REDACTED }, { client_secret: REDACTED }] },
    usage: { total_tokens: 1500, max_tokens: 50 },
    memory: { key: "k", value: 1 },
    password_hint: null,
  });
  // A deep copy: the input is untouched.
  t.is(input.headers.Authorization, "Bearer abc.def");
  t.is(input.body.password, "hunter2");
});

test("inside strings: Bearer and Basic credentials", (t) => {
  t.is(redactString("Authorization: Bearer eyJhbGciOi.J9.sig-_x"), "Authorization: Bearer [REDACTED]");
  t.is(
    redactString('curl -H "authorization: bearer sk-live-123" https://x'),
    'curl -H "authorization: bearer [REDACTED]" https://x',
  );
  t.is(redactString("Basic dXNlcjpwYXNzd29yZA=="), "Basic [REDACTED]");
  t.is(redactString("Authorization: Basic whatever"), "Authorization: Basic [REDACTED]");
  // Prose is left alone: "Basic usage" is not a credential.
  t.is(redactString("Basic usage: call the API"), "Basic usage: call the API");
  // Idempotent.
  t.is(redactString(redactString("Bearer abc")), "Bearer [REDACTED]");
});

test("inside strings: URL passwords and secret query parameters", (t) => {
  t.is(
    redactString("postgres://app:s3cr%40t@db.internal:5432/prod"),
    "postgres://app:[REDACTED]@db.internal:5432/prod",
  );
  t.is(
    redactString("GET https://api.test/v1/items?limit=10&access_token=abc123&api_key=zzz#frag"),
    "GET https://api.test/v1/items?limit=10&access_token=[REDACTED]&api_key=[REDACTED]#frag",
  );
  t.is(
    redactString("https://x.test/?Token=1&page_token=2&tokens=3"),
    "https://x.test/?Token=[REDACTED]&page_token=[REDACTED]&tokens=3",
  );
  t.is(
    redactString("grant_type=password&password=hunter2&username=ann"),
    "grant_type=password&password=[REDACTED]&username=ann",
  );
  t.is(redactString("see https://example.test/docs?page=2"), "see https://example.test/docs?page=2");
});

test("inside strings: JSON text with secret keys (an echoed or logged body)", (t) => {
  t.is(
    redactString('{"user":"ann","password":"hunter2","n":"1"}'),
    '{"user":"ann","password":"[REDACTED]","n":"1"}',
  );
  t.is(redactString('{"access_token": "a\\"b", "ok": true}'), '{"access_token": "[REDACTED]", "ok": true}');
});

test("non-plain values: errors, dates, cycles, primitives", (t) => {
  const err = Object.assign(new Error("failed with Bearer abc"), { code: "E_X" });
  const out = redact({ err, at: new Date("2024-01-02T03:04:05Z"), n: 1, b: true, u: undefined }) as Record<
    string,
    any
  >;
  t.like(out.err, { type: "Error", message: "failed with Bearer [REDACTED]", code: "E_X" });
  t.notRegex(out.err.stack, /Bearer abc/);
  t.is(out.at, "2024-01-02T03:04:05.000Z");
  t.is(out.n, 1);
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  t.deepEqual(redact(cyclic), { a: 1, self: "[Circular]" });
  const shared = { x: 1 };
  t.deepEqual(redact({ p: shared, q: shared }), { p: { x: 1 }, q: { x: 1 } });
  t.is(redact(null), null);
  t.is(redact(7), 7);
});

test("the exported key pattern means the same in Postgres (key ~* pattern)", async (t) => {
  const db = await createTestDatabase("redact");
  try {
    const keys = [...SECRET_KEYS, ...PLAIN_KEYS];
    const { rows } = await db.pool.query(`select k, k ~* $2 as secret from unnest($1::text[]) k`, [
      keys,
      SECRET_KEY_PATTERN_SOURCE,
    ]);
    for (const r of rows) t.is(r.secret, SECRET_KEY_PATTERN.test(r.k), r.k);
    // Everything the database's own second-line redaction treats as secret, we do too.
    const {
      rows: [{ redacted }],
    } = await db.pool.query(
      `select runproof_private.redact(jsonb_object_agg(k, 'v')) as redacted from unnest($1::text[]) k`,
      [keys],
    );
    for (const k of keys)
      if (redacted[k] === REDACTED) t.true(SECRET_KEY_PATTERN.test(k), `${k} is secret in SQL, so in TS too`);
  } finally {
    await db.drop();
  }
});

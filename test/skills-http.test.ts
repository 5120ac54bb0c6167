// http_call against real servers on 127.0.0.1: what a plan author sees on success and on each kind of failure.
import test from "ava";
import { httpCall, isHostAllowed } from "../src/skills/http_call.ts";
import { runSkill } from "../src/skills/registry.ts";
import { SkillError } from "../src/skills/types.ts";
import { sendJson, skillContext, startServer, testConfig, type TestServer } from "./helpers/skills.ts";

const servers: TestServer[] = [];
test.after.always(() => Promise.all(servers.map((s) => s.close())));
async function server(handler: Parameters<typeof startServer>[0]): Promise<TestServer> {
  const s = await startServer(handler);
  servers.push(s);
  return s;
}

async function skillError(p: Promise<unknown>): Promise<SkillError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof SkillError) return e;
    throw e;
  }
  throw new Error("expected a SkillError, but the call succeeded");
}

test("a JSON response comes back parsed, with status and a small set of headers", async (t) => {
  const s = await server((_req, res) =>
    sendJson(res, 200, { hello: "world", n: [1, 2] }, { "set-cookie": "sid=secret", "x-other": "1" }),
  );
  const { output } = await httpCall.run({ url: `${s.url}/thing?x=1` }, skillContext());
  t.deepEqual(output, {
    status: 200,
    headers: { "content-type": "application/json", "content-length": "27" },
    body: { hello: "world", n: [1, 2] },
  });
  t.is(s.requests[0].method, "GET");
  t.is(s.requests[0].url, "/thing?x=1");
});

test("a text response comes back as text", async (t) => {
  const s = await server((_req, res) => {
    res.writeHead(201, { "content-type": "text/plain; charset=utf-8" });
    res.end("créé");
  });
  const { output } = await httpCall.run({ method: "PUT", url: s.url, body: "x" }, skillContext());
  t.like(output, { status: 201, body: "créé" });
});

test("every request carries the step idempotency key (the caller cannot replace it); json bodies are sent as JSON", async (t) => {
  const s = await server((_req, res) => sendJson(res, 200, { ok: true }));
  const ctx = skillContext({ planStep: 3 });
  await httpCall.run(
    {
      method: "POST",
      url: s.url,
      json: { a: 1 },
      headers: { "Idempotency-Key": "mine", "X-Custom": "yes" },
    },
    ctx,
  );
  // A second attempt of the same step sends the same key.
  await httpCall.run({ method: "POST", url: s.url, json: { a: 1 } }, { ...ctx, traceId: "another-attempt" });
  t.is(ctx.idempotencyKey, `${ctx.runId}:3`);
  for (const r of s.requests) {
    t.is(r.headers["idempotency-key"], ctx.idempotencyKey);
    t.is(r.headers["content-type"], "application/json");
    t.deepEqual(JSON.parse(r.body), { a: 1 });
  }
  t.is(s.requests[0].headers["x-custom"], "yes");
});

test("a host outside RUNPROOF_HTTP_ALLOWED_HOSTS is refused before connecting (permanent)", async (t) => {
  const s = await server((_req, res) => sendJson(res, 200, {}));
  const config = testConfig({ RUNPROOF_HTTP_ALLOWED_HOSTS: "example.com, localhost:1" });
  const e = await skillError(httpCall.run({ url: `${s.url}/x` }, skillContext({ config })));
  t.is(e.code, "HOST_NOT_ALLOWED");
  t.false(e.transient);
  t.regex(e.message, /host 127\.0\.0\.1:\d+ is not allowed; add it to RUNPROOF_HTTP_ALLOWED_HOSTS/);
  t.is(s.requests.length, 0, "nothing reached the server");

  // host:port allows that port only; "*" allows everything.
  const pinned = testConfig({ RUNPROOF_HTTP_ALLOWED_HOSTS: `127.0.0.1:${s.port}` });
  t.like((await httpCall.run({ url: s.url }, skillContext({ config: pinned }))).output, { status: 200 });
  const all = testConfig({ RUNPROOF_HTTP_ALLOWED_HOSTS: "*" });
  t.like((await httpCall.run({ url: s.url }, skillContext({ config: all }))).output, { status: 200 });
});

test("host policy matching: names, ports, wildcards, IPv6", (t) => {
  const u = (s: string) => new URL(s);
  t.true(isHostAllowed(u("http://localhost:5678/"), ["localhost"]));
  t.true(isHostAllowed(u("https://API.example.com/"), ["example.com:443", "api.example.com"]));
  t.true(isHostAllowed(u("https://example.com/"), ["example.com:443"]));
  t.false(isHostAllowed(u("http://example.com/"), ["example.com:443"]));
  t.true(isHostAllowed(u("https://a.b.example.com/"), ["*.example.com"]));
  t.false(isHostAllowed(u("https://example.com.evil.test/"), ["*.example.com", "example.com"]));
  t.true(isHostAllowed(u("http://[::1]:8080/"), ["[::1]:8080"]));
  t.false(isHostAllowed(u("http://[::1]:8081/"), ["[::1]:8080"]));
});

test("a redirect to a host that is not allowed is refused; an allowed one is followed", async (t) => {
  const target = await server((_req, res) => sendJson(res, 200, { landed: true }));
  const s = await server((req, res) => {
    const to = req.url === "/away" ? `http://localhost:${target.port}/` : `${target.url}/here`;
    res.writeHead(302, { location: to });
    res.end();
  });
  const config = testConfig({ RUNPROOF_HTTP_ALLOWED_HOSTS: "127.0.0.1" });
  t.deepEqual(
    (await httpCall.run({ url: s.url, headers: { authorization: "Bearer x" } }, skillContext({ config })))
      .output,
    {
      status: 200,
      headers: { "content-type": "application/json", "content-length": "15" },
      body: { landed: true },
    },
  );
  // Another port is another origin: the credentials stay behind, the idempotency key goes along.
  t.is(target.requests[0].headers.authorization, undefined);
  t.truthy(target.requests[0].headers["idempotency-key"]);
  const e = await skillError(httpCall.run({ url: `${s.url}/away` }, skillContext({ config })));
  t.is(e.code, "HOST_NOT_ALLOWED");
  t.is(target.requests.length, 1);
  // An expected redirect status is the answer itself.
  t.like((await httpCall.run({ url: s.url, expect_status: 302 }, skillContext({ config }))).output, {
    status: 302,
    headers: { location: `${target.url}/here` },
  });
  t.is(target.requests.length, 1);
});

test("a server that does not answer in time gives TIMEOUT (transient)", async (t) => {
  const s = await server(() => {}); // never responds
  const config = testConfig({ RUNPROOF_HTTP_TIMEOUT_MS: "150" });
  const started = Date.now();
  const e = await skillError(httpCall.run({ url: s.url }, skillContext({ config })));
  t.is(e.code, "TIMEOUT");
  t.true(e.transient);
  t.regex(e.message, /timed out after 150 ms/);
  t.true(Date.now() - started < 2000);
  // The per-call timeout_ms input overrides the configured default.
  const e2 = await skillError(httpCall.run({ url: s.url, timeout_ms: 50 }, skillContext()));
  t.is(e2.code, "TIMEOUT");
});

test("a response over RUNPROOF_HTTP_MAX_RESPONSE_BYTES is cut off while streaming (permanent)", async (t) => {
  const config = testConfig({ RUNPROOF_HTTP_MAX_RESPONSE_BYTES: "4096" });
  // An endless body without content-length: only a limit enforced while reading can stop it.
  const endless = await server((_req, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    const chunk = "x".repeat(1024);
    const write = () => {
      while (!res.destroyed && res.write(chunk));
      if (!res.destroyed) res.once("drain", write);
    };
    write();
  });
  const e = await skillError(httpCall.run({ url: endless.url }, skillContext({ config })));
  t.is(e.code, "RESPONSE_TOO_LARGE");
  t.false(e.transient);
  t.regex(e.message, /larger than 4096 bytes/);

  const declared = await server((_req, res) => sendJson(res, 200, { big: "y".repeat(5000) }));
  t.is(
    (await skillError(httpCall.run({ url: declared.url }, skillContext({ config })))).code,
    "RESPONSE_TOO_LARGE",
  );
  const fits = await server((_req, res) => sendJson(res, 200, { small: "y".repeat(4000) }));
  t.like((await httpCall.run({ url: fits.url }, skillContext({ config }))).output, { status: 200 });
});

test("5xx and 429 are transient, other 4xx permanent; expect_status decides what success is", async (t) => {
  const s = await server((req, res) => {
    const status = Number(req.url!.slice(1));
    sendJson(res, status, { error: `status ${status}`, token: "leaked?" });
  });
  const call = (status: number, extra = {}) =>
    httpCall.run({ url: `${s.url}/${status}`, ...extra }, skillContext());

  const e500 = await skillError(call(500));
  t.like(e500, { code: "HTTP_STATUS", transient: true, details: { status: 500 } });
  t.regex(
    e500.message,
    /^GET http:\/\/127\.0\.0\.1:\d+\/500 returned HTTP 500: \{"error":"status 500","token":"\[REDACTED\]"\}$/,
  );
  t.like(await skillError(call(503)), { transient: true });
  t.like(await skillError(call(429)), { code: "HTTP_STATUS", transient: true });
  t.like(await skillError(call(404)), { code: "HTTP_STATUS", transient: false, details: { status: 404 } });
  t.like(await skillError(call(400)), { transient: false });

  t.like((await call(404, { expect_status: [200, 404] })).output, {
    status: 404,
    body: { error: "status 404" },
  });
  const e = await skillError(call(200, { expect_status: 201 }));
  t.like(e, { code: "HTTP_STATUS", transient: false });
  t.regex(e.message, /returned HTTP 200 \(expected 201\)/);
});

test("HEAD returns status and headers without a body, even when the declared length is over the limit", async (t) => {
  const s = await server((_req, res) => {
    res.writeHead(200, { "content-type": "application/json", "content-length": "999999999" });
    res.end();
  });
  const config = testConfig({ RUNPROOF_HTTP_MAX_RESPONSE_BYTES: "1024" });
  t.deepEqual((await httpCall.run({ method: "HEAD", url: s.url }, skillContext({ config }))).output, {
    status: 200,
    headers: { "content-type": "application/json", "content-length": "999999999" },
    body: null,
  });
});

test("a refused connection is transient", async (t) => {
  const s = await startServer(() => {});
  await s.close();
  const e = await skillError(httpCall.run({ url: s.url }, skillContext()));
  t.is(e.code, "CONNECTION_ERROR");
  t.true(e.transient);
  t.regex(e.message, /ECONNREFUSED/);
});

test("a request fetch can never send (a blocked port) is permanent", async (t) => {
  const e = await skillError(httpCall.run({ url: "http://127.0.0.1:1/" }, skillContext()));
  t.like(e, { code: "INVALID_REQUEST", transient: false });
  t.regex(e.message, /bad port/);
});

test("aborting the step signal (job cancelled / worker stopping) stops the request", async (t) => {
  const s = await server(() => {});
  const ac = new AbortController();
  setTimeout(() => ac.abort(new Error("job cancelled")), 50);
  const started = Date.now();
  const e = await skillError(httpCall.run({ url: s.url }, skillContext({ signal: ac.signal })));
  t.is(e.code, "ABORTED");
  t.true(e.transient);
  t.regex(e.message, /aborted: job cancelled/);
  t.true(Date.now() - started < 2000);
});

test("through runSkill, the step timeout wins over the per-call timeout", async (t) => {
  const s = await server(() => {});
  const e = await skillError(runSkill(httpCall, { url: s.url }, skillContext(), 80));
  t.like(e, { code: "TIMEOUT", transient: true });
  t.regex(e.message, /http_call timed out after 80 ms/);
});

test("bad input is refused before any request, with a readable message (permanent)", async (t) => {
  const cases: [unknown, RegExp][] = [
    [{ url: "ftp://127.0.0.1/x" }, /url: must be an http:\/\/ or https:\/\/ URL/],
    [{ url: "http://127.0.0.1/", method: "FETCH" }, /method: Invalid option/],
    [{ url: "http://127.0.0.1/", surprise: 1 }, /Unrecognized key: "surprise"/],
    [{ url: "http://user:pw@127.0.0.1/" }, /url: must not contain credentials/],
    [{ url: "http://127.0.0.1/", method: "GET", json: {} }, /GET and HEAD requests cannot have a body/],
    [{ url: "http://127.0.0.1/", method: "POST", json: {}, body: "x" }, /either body or json/],
    [{ url: "http://127.0.0.1/", headers: { "bad header": "x" } }, /is not a valid header name/],
    [{ url: "http://127.0.0.1/", headers: { a: "x\r\nInjected: 1" } }, /must not contain line breaks/],
  ];
  for (const [input, message] of cases) {
    const e = await skillError(httpCall.run(input as never, skillContext()));
    t.is(e.code, "INVALID_INPUT", JSON.stringify(input));
    t.false(e.transient);
    t.regex(e.message, /^invalid input for http_call: /);
    t.regex(e.message, message);
  }
});

// http_call: one real HTTP request. The allowed-hosts policy is checked before any
// connection (and again on every redirect), the response is size-capped while it
// streams, and every request carries the step's idempotency key so a retried
// attempt cannot apply the same side effect twice on a server that honours it.
import { z } from "zod";
import type { Config } from "../lib/config.ts";
import { redactString } from "../lib/redact.ts";
import {
  callSignal,
  decodeBody,
  fetchFailure,
  isTransientStatus,
  readBodyLimited,
  snippet,
} from "./http-util.ts";
import { defineSkill, SkillError } from "./types.ts";

const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;
const MAX_REDIRECTS = 5;
/** Response headers worth keeping in the ledger; the rest is noise or could carry secrets (set-cookie). */
const KEPT_HEADERS = ["content-type", "content-length", "etag", "last-modified", "location", "retry-after"];
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

const statusCode = z.number().int().min(100).max(599);

export const httpCallInput = z
  .strictObject({
    method: z.enum(METHODS).default("GET").describe("HTTP method, upper case"),
    url: z
      .url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" })
      .refine((u) => !/^[a-z]+:\/\/[^/?#]*@/i.test(u), "must not contain credentials; send them in a header"),
    headers: z
      .record(
        z.string().regex(HEADER_NAME, "is not a valid header name"),
        z.string().regex(/^[^\r\n\0]*$/, "must not contain line breaks"),
      )
      .default({})
      .describe("Request headers"),
    body: z.string().optional().describe("Raw request body (text)"),
    json: z.unknown().optional().describe("Request body sent as JSON (sets content-type)"),
    expect_status: z
      .union([statusCode, z.array(statusCode).min(1)])
      .optional()
      .describe("Status code(s) that count as success; default any 2xx/3xx"),
    timeout_ms: z
      .number()
      .int()
      .min(1)
      .max(600000)
      .optional()
      .describe("Per-call timeout; default RUNPROOF_HTTP_TIMEOUT_MS"),
    follow_redirects: z.boolean().default(true),
  })
  .refine((v) => v.body === undefined || v.json === undefined, {
    message: "give either body or json, not both",
  })
  .refine(
    (v) => (v.method !== "GET" && v.method !== "HEAD") || (v.body === undefined && v.json === undefined),
    {
      message: "GET and HEAD requests cannot have a body",
    },
  );

export type HttpCallInput = z.output<typeof httpCallInput>;

export interface HttpCallOutput {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/** Whether RUNPROOF_HTTP_ALLOWED_HOSTS lets us connect to this URL's host and port. */
export function isHostAllowed(url: URL, allowed: readonly string[]): boolean {
  const host = url.hostname.toLowerCase();
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  return allowed.some((entry) => {
    // "example.com", "example.com:8080", "[::1]:8080", "*.example.com", "*" or "*:8080".
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(entry);
    if (!m) return false;
    const [, entryHost, entryPort] = m;
    if (entryPort !== undefined && entryPort !== port) return false;
    if (entryHost === "*") return true;
    if (entryHost.startsWith("*.")) return host.endsWith(entryHost.slice(1));
    return entryHost === host;
  });
}

function assertHostAllowed(url: URL, config: Config): void {
  if (!isHostAllowed(url, config.httpAllowedHosts)) {
    throw new SkillError(
      `host ${url.host} is not allowed; add it to RUNPROOF_HTTP_ALLOWED_HOSTS (allowed: ${config.httpAllowedHosts.join(", ")})`,
      { code: "HOST_NOT_ALLOWED", transient: false, details: { host: url.host } },
    );
  }
}

export const httpCall = defineSkill({
  name: "http_call",
  description:
    "Sends one HTTP request to an allowed host and returns {status, headers, body}; JSON bodies are parsed. " +
    "5xx, 429, timeouts and connection errors are retried; other 4xx fail the step.",
  input: httpCallInput,
  sideEffects: true,
  defaultTimeoutMs: 30000,
  costCents: 0,
  async run(input, ctx) {
    let url = new URL(input.url);
    assertHostAllowed(url, ctx.config);

    const headers = new Headers(input.headers);
    let body: string | undefined = input.body;
    if (input.json !== undefined) {
      body = JSON.stringify(input.json);
      if (!headers.has("content-type")) headers.set("content-type", "application/json");
    }
    // Ours, not the caller's: the key must be the step's, or retries lose their protection.
    headers.set("idempotency-key", ctx.idempotencyKey);

    const expected = input.expect_status === undefined ? undefined : [input.expect_status].flat();
    const call = callSignal(ctx.signal, input.timeout_ms ?? ctx.config.httpTimeoutMs);
    let method: string = input.method;
    const label = () => redactString(`${method} ${url.origin}${url.pathname}`);

    let res: Response;
    for (let redirects = 0; ; redirects++) {
      try {
        res = await fetch(url, { method, headers, body, signal: call.signal, redirect: "manual" });
      } catch (err) {
        throw fetchFailure(err, call, label());
      }
      const location = res.headers.get("location");
      const isRedirect = [301, 302, 303, 307, 308].includes(res.status) && location !== null;
      // A redirect the plan expects (expect_status: 302) is the answer, not a hop.
      if (!isRedirect || !input.follow_redirects || expected?.includes(res.status)) break;
      await res.body?.cancel().catch(() => {});
      if (redirects >= MAX_REDIRECTS) {
        throw new SkillError(`${label()}: more than ${MAX_REDIRECTS} redirects`, {
          code: "TOO_MANY_REDIRECTS",
          transient: false,
        });
      }
      const next = new URL(location!, url);
      if (next.protocol !== "http:" && next.protocol !== "https:") {
        throw new SkillError(`${label()}: redirect to unsupported URL scheme ${next.protocol}`, {
          code: "HOST_NOT_ALLOWED",
          transient: false,
        });
      }
      // A redirect must not take us somewhere the policy would have refused.
      assertHostAllowed(next, ctx.config);
      // Credentials are for the origin they were given to (as browsers do).
      if (next.origin !== url.origin) {
        headers.delete("authorization");
        headers.delete("cookie");
        headers.delete("proxy-authorization");
      }
      // 303, and 301/302 after a POST, turn into a GET without a body (as browsers do).
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === "POST")) {
        if (method !== "HEAD") method = "GET";
        body = undefined;
        headers.delete("content-type");
      }
      url = next;
    }

    let bytes: Uint8Array;
    try {
      // A HEAD response's content-length describes a body that is never sent.
      bytes =
        method === "HEAD"
          ? new Uint8Array(0)
          : await readBodyLimited(res, ctx.config.httpMaxResponseBytes, label());
    } catch (err) {
      throw fetchFailure(err, call, label());
    }

    const ok = expected ? expected.includes(res.status) : res.status >= 200 && res.status < 400;
    if (!ok) {
      const text = snippet(bytes);
      throw new SkillError(
        redactString(
          `${label()} returned HTTP ${res.status}${expected ? ` (expected ${expected.join(" or ")})` : ""}${text ? `: ${text}` : ""}`,
        ),
        { code: "HTTP_STATUS", transient: isTransientStatus(res.status), details: { status: res.status } },
      );
    }

    const kept: Record<string, string> = {};
    for (const name of KEPT_HEADERS) {
      const v = res.headers.get(name);
      if (v !== null) kept[name] = v;
    }
    const output: HttpCallOutput = {
      status: res.status,
      headers: kept,
      body: method === "HEAD" ? null : decodeBody(bytes, res.headers.get("content-type")),
    };
    return { output };
  },
});
